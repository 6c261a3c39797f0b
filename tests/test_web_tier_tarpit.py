"""No tenant can hold the web tier: a workspace's model server that accepts and never answers (a tarpit),
then 40 concurrent model loads, through the real web process (gunicorn gthread, few threads).

Before the fix each load held a web thread for up to 300 s: /healthz, /login/ and other tenants' logins
timed out. Now a web request's call to such a server is bounded in time and in number per workspace, and
the long operations run in a worker on the `local_models` queue.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher
from django.db import connection

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from apps.assistant.models import ModelPull, ProviderConfig
from celery_app import app as celery

ROOT = Path(__file__).resolve().parent.parent
HTTPS = {"X-Forwarded-Proto": "https"}  # as the TLS proxy in front of the web process says


class Tarpit:
    """Accepts TCP connections on 127.0.0.1 and never answers (bounded: holds at most 200)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopped.is_set() and len(self.held) < 200:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.held.append(conn)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    yield pit
    pit.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def web(postgres, redis_url, tmp_path) -> Iterator[str]:
    """The web process as production runs it (gunicorn gthread), on this test's database and Redis."""
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "filesystem://",  # under DATA_DIR: nothing left in the shared Redis
        "DATA_DIR": str(tmp_path),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "1",
        "WEB_THREADS": "8",
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",  # the tarpit is the workspace's "model server"
        "LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "web.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "chatbot.wsgi", "--config", "chatbot/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("gunicorn did not start: " + (tmp_path / "web.log").read_text()[-3000:])
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _admin(username):
    user = UserFactory(username=username)
    hasher = BCryptSHA256PasswordHasher()  # one the web process knows (tests use a faster one)
    user.password = hasher.encode(f"{username} password 1", hasher.salt())
    user.save(update_fields=["password"])
    return MembershipFactory(workspace=WorkspaceFactory(), user=user, role=Role.ADMIN)


def _login(web: str, username: str, timeout: float = 10) -> httpx.Response:
    return httpx.post(
        f"{web}/api/auth/login",
        json={"username": username, "password": f"{username} password 1"},
        headers=HTTPS,
        timeout=timeout,
    )


def _timed(call: Callable[[], httpx.Response]) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = call().status_code
    except httpx.TimeoutException:
        status = 0
    return status, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_forty_loads_against_a_tarpit_do_not_hold_the_web_tier(web, tarpit):
    # given a workspace whose LM Studio is a tarpit, and another tenant who wants to log in
    attacker = _admin("attacker")
    ProviderConfig.objects.create(workspace=attacker.workspace, provider="lmstudio", base_url=tarpit.url)
    _admin("other-tenant")
    token = _login(web, "attacker").json()["access"]

    # when the attacker fires 40 concurrent model loads
    def load() -> tuple[int, str, str]:
        try:
            response = httpx.post(
                f"{web}/api/lmstudio/models/load",
                json={"model": "big-model"},
                headers={**HTTPS, "Authorization": f"Bearer {token}"},
                timeout=20,
            )
        except httpx.TimeoutException:
            return 0, "no answer in 20 s", ""
        return response.status_code, response.json()["error"]["code"], response.headers.get("Retry-After", "")

    with ThreadPoolExecutor(max_workers=40) as pool:
        started = time.monotonic()
        loads = [pool.submit(load) for _ in range(40)]
        time.sleep(0.5)  # the storm is on
        # then the web tier still answers everyone else within a couple of seconds
        health = _timed(lambda: httpx.get(f"{web}/healthz", timeout=2))
        login_page = _timed(lambda: httpx.get(f"{web}/login/", headers=HTTPS, timeout=2))
        login = _timed(lambda: _login(web, "other-tenant", timeout=2))
        answers = [f.result() for f in loads]
        storm = time.monotonic() - started

    assert [health[0], login_page[0], login[0]] == [200, 200, 200]
    assert max(health[1], login_page[1], login[1]) < 2.0
    # and the attacker's own requests end fast: LOCAL_MODEL_WEB_CONCURRENCY (2) wait out the web
    # budget (5 s) and fail as a timeout, the rest are told at once that the workspace is busy
    assert Counter(answers) == {(503, "lmstudio_timeout", ""): 2, (429, "local_model_busy", "5"): 38}
    assert storm < 5.0 + 2.0 + 3.0  # budget, connect, and slack for a loaded 2-core machine
    assert not ModelPull.objects.exists()  # nothing was queued for a server that never answered


def test_a_web_call_to_a_tarpit_ends_within_the_budget(settings, tarpit, db):
    from apps.assistant import local_models

    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    settings.LOCAL_MODEL_WEB_TIMEOUT = 0.5
    workspace = WorkspaceFactory()
    ProviderConfig.objects.create(workspace=workspace, provider="ollama", base_url=tarpit.url)

    started = time.monotonic()
    with pytest.raises(local_models.TransientError) as caught:
        local_models.ollama_models(workspace_id=workspace.pk)

    assert caught.value.code == "ollama_timeout"
    assert time.monotonic() - started < 1.5
    assert len(tarpit.held) == 1


@pytest.fixture
def drip() -> Iterator[str]:
    """A server that answers one header byte every 0.1 s, forever (bounded: 10 s per connection)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.1)
    stopped = threading.Event()

    def serve() -> None:
        while not stopped.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(100):
                    if stopped.is_set():
                        break
                    try:
                        conn.sendall(b"X")
                    except OSError:
                        break
                    time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stopped.set()
    thread.join(timeout=2)
    sock.close()


def test_a_server_dripping_its_answer_is_cut_at_the_budget_too(settings, drip, db):
    from apps.assistant import local_models

    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    settings.LOCAL_MODEL_WEB_TIMEOUT = 0.5
    workspace = WorkspaceFactory()
    ProviderConfig.objects.create(workspace=workspace, provider="lmstudio", base_url=drip)

    started = time.monotonic()
    status = local_models.lmstudio_status(workspace_id=workspace.pk)

    assert (status.reachable, status.error) == (False, f"LM Studio at {drip} did not answer in time.")
    assert time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_a_workspace_runs_at_most_two_long_operations_at_once(settings, llm_standin, tasks_captured):
    from apps.assistant import local_models

    settings.LMSTUDIO_BASE_URL = llm_standin.url
    settings.OLLAMA_BASE_URL = llm_standin.url
    workspace, other = WorkspaceFactory(), WorkspaceFactory()

    local_models.lmstudio_load_start(workspace_id=workspace.pk, model="a")
    local_models.ollama_pull_start(workspace_id=workspace.pk, model="b")
    again = local_models.lmstudio_load_start(workspace_id=workspace.pk, model="a")  # already running
    with pytest.raises(local_models.TooManyRequests) as caught:
        local_models.lmstudio_load_start(workspace_id=workspace.pk, model="c")
    elsewhere = local_models.lmstudio_load_start(workspace_id=other.pk, model="c")

    assert caught.value.code == "local_model_jobs_busy"
    assert again.status == "queued"
    assert sorted(ModelPull.objects.values_list("workspace_id", "kind", "model")) == sorted(
        [(workspace.pk, "load", "a"), (workspace.pk, "pull", "b"), (other.pk, "load", "c")]
    )
    assert elsewhere.model == "c"


def test_long_model_operations_run_on_their_own_queue_never_with_customer_messages():
    router = celery.amqp.router

    queues = {
        name: router.route({}, name)["queue"].name
        for name in ("local_models.lmstudio_load", "local_models.ollama_pull")
    }
    procfile = (ROOT / "Procfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()

    assert queues == {
        "local_models.lmstudio_load": "local_models",
        "local_models.ollama_pull": "local_models",
    }
    worker_line = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    assert "local_models" not in worker_line and "inbound" in worker_line
    assert "-Q local_models" in procfile
    assert "celery -A celery_app worker -Q local_models" in compose
