from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Queue

from celery_app import QUEUES, ping
from celery_app import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def test_reliability_settings():
    conf = celery_app.conf

    assert (
        {q.name for q in conf.task_queues}
        == set(QUEUES)
        == {
            "inbound",
            "llm",
            "outbound",
            "campaigns",
            "default",
            "whatsapp_web",
            "local_models",
        }
    )
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    assert ping.retry_backoff is True and ping.retry_jitter is True and ping.max_retries == 5
    assert celery_app.amqp.router.route({}, ping.name)["queue"].name == "default"
    assert isinstance(conf.task_queues[0], Queue)


def test_redis_visibility_timeout_exceeds_the_longest_backoff(redis_url):
    from django.conf import settings

    assert settings.CELERY_BROKER_URL == redis_url
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > ping.retry_backoff_max * 2


def _round_trip(tmp_path: Path, **env_overrides: str) -> str:
    """Send `default.ping` from one process and let a real worker in another run it."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), **env_overrides}
    env.pop("DATABASE_URL", None)  # the ping needs no database; keep the worker off the test DB
    log = tmp_path / "worker.log"
    queue = "default"
    worker = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "-Q",
            queue,
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "INFO"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        # Generous waits: on a loaded CI machine a worker's start-up alone has taken over a minute.
        _wait_for_log(log, "ready.", worker)
        sent = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-c",
                f"from celery_app import ping; print(ping.apply_async(queue={queue!r}).id)",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        task_id = sent.stdout.strip()
        return _wait_for_log(log, f"Task default.ping[{task_id}] succeeded", worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _wait_for_log(log: Path, needle: str, worker: subprocess.Popen[bytes], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        text = log.read_text() if log.exists() else ""
        if needle in text:
            return text
        time.sleep(0.2)
    text = log.read_text() if log.exists() else "(none)"
    pytest.fail(f"no {needle!r} in the worker's log (exit code {worker.poll()}); log:\n{text}")


@pytest.mark.slow
def test_embedded_broker_carries_a_task_between_processes_without_any_server(tmp_path):
    text = _round_trip(tmp_path, REDIS_URL="", CELERY_BROKER_URL="")

    assert "'pong'" in text
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.slow
def test_redis_broker_carries_a_task_to_a_real_worker(tmp_path, redis_url):
    text = _round_trip(tmp_path, REDIS_URL=redis_url)

    assert "'pong'" in text


def test_a_task_retries_a_transient_failure_by_default_but_not_a_bug():
    from django.db import OperationalError

    calls: list[str] = []

    @celery_app.task(name="default.test_flaky", bind=True)
    def flaky(self: object, kind: str) -> str:
        calls.append(kind)
        if len(calls) < 3:
            raise OperationalError("server closed the connection") if kind == "db" else ValueError("bad data")
        return "done"

    retried = flaky.apply(args=("db",))  # eager: retries run at once, countdowns skipped
    calls.clear()
    failed = flaky.apply(args=("bug",))

    assert retried.get() == "done"
    assert failed.failed() and isinstance(failed.result, ValueError)
    assert calls == ["bug"]  # a bug is not retried: it would only happen again


def _transport_options(redis_url: str, **env_overrides: str) -> dict[str, object]:
    show = "from django.conf import settings; print(sorted(settings.CELERY_BROKER_TRANSPORT_OPTIONS.items()))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_VISIBILITY", "CELERY_UNACKED"))}
    env = {**env, "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, **env_overrides}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {show}"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**env, "DJANGO_SETTINGS_MODULE": "chatbot.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return dict(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


def test_unacknowledged_messages_are_looked_for_at_kombus_pace_unless_a_period_is_set(redis_url):
    # Production: kombu's own look (every ~100 s) and lock; the sweeper brings work back sooner.
    assert _transport_options(redis_url) == {"visibility_timeout": 7200}
    # The two-host test: every second, with a lock that lapses after 10 s when its holder is killed.
    assert _transport_options(
        redis_url, CELERY_VISIBILITY_TIMEOUT="5", CELERY_UNACKED_RESTORE_SECONDS="1"
    ) == {
        "visibility_timeout": 5,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "unacked_mutex_expire": 10,
    }
