"""/metrics under several gunicorn workers (the web process as production runs it): every scrape sums
all workers' counters, so a counter only rises, even when a worker is replaced, and the series every
process shares (breakers, queue depths, backlog) are there from the start."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-only-metrics-token-0123456789"
HEALTHZ = re.compile(
    r'^django_http_requests_total_by_view_transport_method_total\{method="GET",transport="http",view="healthz"\} (\S+)$',
    re.MULTILINE,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(tmp_path: Path, **settings: str) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")  # emptied at start
    env = {
        **os.environ,
        **settings,
        "DATA_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "2",
        "WEB_THREADS": "4",
    }
    if "DATABASE_URL" not in settings:  # embedded: a SQLite file under DATA_DIR, no Redis
        env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
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
    yield url, metrics_dir, proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def web(postgres, redis_url, tmp_path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """The web process as production runs it, on this test's database and Redis."""
    db = connection.settings_dict
    database = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    yield from _start(tmp_path, DATABASE_URL=database, REDIS_URL=redis_url)


@pytest.fixture
def embedded_web(tmp_path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """The web process of `make run` on the embedded defaults (SQLite, no Redis)."""
    yield from _start(tmp_path)


def _scrape(url: str) -> str:
    # A new connection each time, so the scrapes land on either worker as Prometheus's would.
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return response.text


def _healthz_count(text: str) -> float:
    found = HEALTHZ.search(text)
    return float(found.group(1)) if found else 0.0


def _drive(url: str, requests: int) -> None:
    for _ in range(requests):  # a new connection per request: gunicorn hands them to either worker
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def _worker_pids(metrics_dir: Path, master: int) -> set[int]:
    pids = {int(m.group(1)) for f in metrics_dir.iterdir() if (m := re.match(r"counter_(\d+)\.db$", f.name))}
    return pids - {master, 1}


@pytest.mark.parametrize("mode", ["web", "embedded_web"])
def test_counters_sum_every_worker_and_only_rise(mode, request):
    url, metrics_dir, proc = request.getfixturevalue(mode)
    start = _healthz_count(_scrape(url))  # the start-up probe's requests

    seen = []
    for _ in range(6):
        _drive(url, 20)
        seen.append(_healthz_count(_scrape(url)))

    # Every request counted once, whichever worker: each round adds exactly its 20. The first round may
    # also count a start-up probe the server answered after `start` was read (a probe the waiting loop
    # gave up on under load, answered late): at most one.
    assert [after - before for before, after in zip(seen, seen[1:], strict=False)] == [20] * 5
    assert seen[0] - start in (20, 21)
    assert len(_worker_pids(metrics_dir, proc.pid)) == 2  # both workers served and wrote their counters
    assert not (metrics_dir / "counter_1.db").exists()


def test_a_replaced_worker_takes_nothing_from_the_totals(web):
    url, metrics_dir, proc = web
    _drive(url, 40)
    before = _healthz_count(_scrape(url))
    old = _worker_pids(metrics_dir, proc.pid)

    os.kill(sorted(old)[0], signal.SIGTERM)  # gunicorn starts another in its place
    deadline = time.monotonic() + 30
    while len(_worker_pids(metrics_dir, proc.pid) - old) == 0 and time.monotonic() < deadline:
        _drive(url, 5)
    _drive(url, 20)
    after = _healthz_count(_scrape(url))

    assert _worker_pids(metrics_dir, proc.pid) - old  # a new worker answered
    assert after >= before + 20


def test_one_scrape_shows_the_shared_series_from_the_start_under_one_prefix(web):
    url, _, _ = web
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200  # a query, a cache get, in some worker

    text = _scrape(url)

    assert 'chatbot_circuit_state{name="llm:openai"} 0.0' in text  # before any LLM call
    assert 'chatbot_circuit_state{name="whatsapp:graph.facebook.com"} 0.0' in text
    assert 'chatbot_celery_queue_depth{queue="inbound"}' in text
    assert 'chatbot_celery_queue_depth{queue="llm"}' in text
    assert "chatbot_celery_broker_up 1.0" in text
    assert "chatbot_inbound_backlog " in text
    assert "chatbot_search_index_lag_seconds " in text
    assert "# TYPE chatbot_assistant_reply_cache_total counter" in text
    assert 'django_db_execute_total{alias="default",vendor="postgresql"}' in text
    assert 'django_cache_get_total{backend="redis"}' in text
    own = {
        name
        for name in re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
        if not name.startswith(("django_", "python_", "process_"))
    }
    assert own and all(name.startswith("chatbot_") for name in own), own


@pytest.mark.parametrize(
    ("flag", "engine"), [("1", "django_prometheus.db.backends"), ("0", "django.db.backends")]
)
def test_db_metrics_choose_the_counting_backend_or_the_plain_one(tmp_path, flag, engine):
    from tests.test_settings import GOOD, run_manage

    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    result = run_manage(tmp_path, "shell", "-c", code, **{**GOOD, "DB_METRICS": flag, "METRICS_PUBLIC": "1"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].rsplit(".", 1)[0] == engine
