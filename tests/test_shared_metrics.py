"""Metrics recorded in any process (the LLM calls run in Celery workers) and read at one /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import redis

from chatbot import shared_metrics
from chatbot.shared_metrics import FileStore, RedisStore, SharedCounter, SharedHistogram


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path, monkeypatch):
    if request.param == "file":
        chosen = FileStore(tmp_path / "metrics")
    else:
        chosen = RedisStore(redis.Redis.from_url(request.getfixturevalue("redis_url")))
    monkeypatch.setattr(shared_metrics, "_store", lambda: chosen)
    return chosen


def _name() -> str:
    return f"chatbot_test_metric_{uuid.uuid4().hex[:8]}"


def test_a_histogram_counts_each_sample_in_its_bucket_cumulatively(store):
    latency = SharedHistogram(_name(), "Test.", ["provider", "outcome"], buckets=(0.5, 1, 5), exported=False)

    for value in (0.2, 0.5, 3.0, 100.0):
        latency.observe("gemini", "ok", value=value)
    latency.observe("openai", "ok", value=0.7)

    samples = {
        (s.name.rsplit("_", 1)[-1], s.labels.get("provider"), s.labels.get("le")): s.value
        for s in latency.collect().samples
    }
    assert samples[("bucket", "gemini", "0.5")] == 2
    assert samples[("bucket", "gemini", "1.0")] == 2
    assert samples[("bucket", "gemini", "5.0")] == 3
    assert samples[("bucket", "gemini", "+Inf")] == 4
    assert samples[("count", "gemini", None)] == 4
    assert samples[("sum", "gemini", None)] == pytest.approx(103.7)
    assert samples[("bucket", "openai", "0.5")] == 0
    assert samples[("bucket", "openai", "1.0")] == 1


def test_a_counter_adds_up_by_label(store):
    lookups = SharedCounter(_name(), "Test.", ["result"], exported=False)

    lookups.inc("hit")
    lookups.inc("hit")
    lookups.inc("miss", amount=3)

    values = {s.labels["result"]: s.value for s in lookups.collect().samples if s.name.endswith("_total")}
    assert values == {"hit": 2.0, "miss": 3.0}


def test_wrong_labels_are_a_programming_error(store):
    with pytest.raises(ValueError, match="takes labels"):
        SharedCounter(_name(), "Test.", ["a", "b"], exported=False).inc("only-one")


_RECORD = (
    "import sys, redis; from pathlib import Path; from chatbot.shared_metrics import FileStore, RedisStore; "
    "kind, where, name = sys.argv[1:4]; "
    "store = FileStore(Path(where)) if kind == 'file' else RedisStore(redis.Redis.from_url(where)); "
    "[store.add(name, {'x': 1.0}) for _ in range(200)]"
)


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_processes_recording_at_once_lose_nothing(kind, tmp_path, request):
    where = str(tmp_path / "metrics") if kind == "file" else request.getfixturevalue("redis_url")
    name = _name()
    store = FileStore(tmp_path / "metrics") if kind == "file" else RedisStore(redis.Redis.from_url(where))

    procs = [subprocess.Popen([sys.executable, "-c", _RECORD, kind, where, name]) for _ in range(3)]
    codes = [proc.wait(timeout=120) for proc in procs]

    assert codes == [0, 0, 0]
    assert store.read(name) == {"x": 600.0}


def test_recording_while_redis_is_unreachable_neither_raises_nor_breaks_the_scrape(
    monkeypatch, caplog, metrics_client
):
    # Built as django-redis builds the production client: from a pool, so without redis-py 8's ten
    # retries with backoff that a bare `redis.Redis(...)` gets (they made this test take ~24 s).
    dead = RedisStore(redis.Redis(connection_pool=redis.ConnectionPool(port=1, socket_connect_timeout=0.2)))
    monkeypatch.setattr(shared_metrics, "_store", lambda: dead)
    metric = SharedHistogram(_name(), "Test.", ["provider"], buckets=(1,))

    metric.observe("gemini", value=0.3)
    response = metrics_client.get("/metrics")

    assert response.status_code == 200
    assert f"metric {metric.name} not recorded" in caplog.text
    shared_metrics._METRICS.remove(metric)


def test_metrics_shows_what_another_process_recorded(redis_url, settings, metrics_client):
    """The LLM latency recorded by a worker process appears at the web's /metrics."""
    provider = f"p{uuid.uuid4().hex[:8]}"  # the Redis database outlives the test
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'chatbot.settings'); django.setup(); "
        "from apps.assistant.metrics import PROVIDER_LATENCY; "
        f"PROVIDER_LATENCY.observe({provider!r}, 'ok', value=0.3)"
    )
    env = {**os.environ, "REDIS_URL": redis_url}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)  # noqa: S603

    text = metrics_client.get("/metrics").content.decode()

    assert (
        f'chatbot_assistant_provider_latency_seconds_count{{outcome="ok",provider="{provider}"}} 1.0' in text
    )
    assert (
        f'chatbot_assistant_provider_latency_seconds_bucket{{le="0.5",outcome="ok",provider="{provider}"}} 1.0'
        in text
    )
    assert "# TYPE chatbot_assistant_reply_cache_total counter" in text  # listed before any reply was made


def test_a_histogram_without_labels(store):
    wait = SharedHistogram(_name(), "Test.", [], buckets=(1,), exported=False)

    wait.observe(value=0.5)
    wait.observe(value=2.0)

    samples = {(s.name.rsplit("_", 1)[-1], s.labels.get("le")): s.value for s in wait.collect().samples}
    assert samples[("bucket", "1.0")] == 1
    assert samples[("bucket", "+Inf")] == 2
    assert samples[("count", None)] == 2


def test_an_exported_metric_outside_the_project_prefix_is_refused():
    with pytest.raises(ValueError, match="chatbot_"):
        SharedCounter("conversations_something", "Test.", [])

    assert all(metric.name.startswith("chatbot_") for metric in shared_metrics._METRICS)
