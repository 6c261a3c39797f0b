"""What the fault tests share: real Celery workers in their own process groups, a private Redis server
that can be killed and restarted, and the helpers that post signed webhooks and wait for outcomes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import ConversationSettings, Message
from apps.whatsapp.models import Channel
from apps.whatsapp.signature import sign

ROOT = Path(__file__).resolve().parents[2]
APP_SECRET = "faults-app-secret"
CONCURRENCY = 4  # threads per worker
BROKER_KEYS = ("inbound", "llm", "outbound", "default", "unacked", "unacked_index", "unacked_mutex")


def wait_for(check: Callable[[], object], timeout: float = 60.0, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {check.__doc__ or check}")


def settle(seconds: float = 2.0) -> None:
    """Give a wrongly duplicated task time to show itself before asserting 'exactly once'."""
    time.sleep(seconds)


class Workers:
    """Celery workers in their own process groups, so a test can SIGKILL one mid-task."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self._extra: dict[int, tuple[str, int, dict[str, str]]] = {}
        self._done: set[int] = set()  # killed on purpose, or already replaced
        self.exits: list[int] = []  # exit codes of the workers that stopped on their own

    def start(
        self,
        *,
        queues: str = "inbound,llm,outbound,default",
        concurrency: int = CONCURRENCY,
        **extra_env: str,
    ) -> subprocess.Popen[bytes]:
        log_path = self.logs / f"worker-{len(self.procs)}.log"
        log = log_path.open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_app",
                "worker",
                "-Q",
                queues,
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
                "-n",
                f"faults{len(self.procs)}@%h",
            ],
            cwd=ROOT,
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        self._extra[proc.pid] = (queues, concurrency, extra_env)
        wait_for(lambda: "ready." in log_path.read_text(), timeout=120)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self._done.add(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def revive(self) -> None:
        """Start a replacement for each worker that exited on its own, as the deployment's restart
        policy does (docker-compose: `restart: unless-stopped`); its exit code goes to `exits`."""
        for proc in list(self.procs):
            if proc.pid not in self._done and proc.poll() is not None:
                self._done.add(proc.pid)
                self.exits.append(proc.returncode)
                queues, concurrency, extra_env = self._extra[proc.pid]
                self.start(queues=queues, concurrency=concurrency, **extra_env)

    def stop_all(self) -> None:
        # The test has asserted what it needed; a warm shutdown (each worker waiting out its tasks and
        # its broker poll) only cost 3-10 s per test. Broker leftovers are cleared by the next pool.
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for log in sorted(self.logs.glob("worker-*.log")):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")  # shown by pytest when the test failed


def worker_pool(*, redis_url: str, graph_url: str, data_dir: Path) -> Workers:
    """Workers on this test's database, `redis_url` (broker, cache, pacing, breakers) and Graph stand-in."""
    # Task messages left in the broker by an earlier run would point at rows of another database.
    redis.Redis.from_url(redis_url).delete(*BROKER_KEYS)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "WHATSAPP_GRAPH_URL": graph_url,
        "FERNET_KEYS": ",".join(django_settings.FERNET_KEYS),
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(data_dir),
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",  # the LLM stand-in the workspaces point at
    }
    return Workers(env, data_dir)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A throw-away redis-server on a free port, without persistence: killing it loses every key
    (broker queues, unacknowledged tasks, pacing, breakers), the worst case of a Redis restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.starts += 1
        log = (self.folder / f"redis-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answering() -> bool:
            """the private redis-server answers PING"""
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(answering, timeout=20)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; open connections are reset."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def make_channel(phone_number_id: str) -> Channel:
    channel = Channel.objects.create(
        workspace=WorkspaceFactory.create(),
        kind="cloud",
        phone_number_id=phone_number_id,
        access_token="faults-token",
        app_secret=APP_SECRET,
    )
    # Pace per customer out of the way: these tests are about faults, not Meta's per-user pace.
    ConversationSettings.objects.update_or_create(
        workspace_id=channel.workspace_id,
        defaults={"recipient_interval_seconds": 0.05, "recipient_burst": 10},
    )
    return channel


def delivery(phone_number_id: str, wa_id: str, text: str, wamid: str | None = None) -> bytes:
    message = {
        "from": wa_id,
        "id": wamid or f"wamid.faults.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Cliente"}, "wa_id": wa_id}],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA-FAULTS", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def signed_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)}


def bot_replies(channel: Channel) -> list[Message]:
    return list(Message.objects.filter(channel=channel, author=Message.Author.BOT))
