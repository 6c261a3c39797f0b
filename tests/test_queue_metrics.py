"""Queue depths in /metrics, read from the configured broker (Redis, or the embedded filesystem broker)."""

from __future__ import annotations

import uuid

import pytest
from kombu import Queue

from celery_app import app as celery_app
from chatbot import queue_metrics


@pytest.fixture
def probe_queue(monkeypatch):
    name = f"test-depth-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(queue_metrics, "QUEUES", ("test-never-declared", name))
    with celery_app.connection_for_write() as conn:
        queue = Queue(name)
        queue(conn.default_channel).declare()
        yield name, conn
        queue(conn.default_channel).purge()
        queue(conn.default_channel).delete()


def test_each_queue_shows_the_messages_waiting_in_it_and_an_unknown_one_zero(probe_queue):
    name, conn = probe_queue
    producer = conn.Producer()
    for n in range(3):
        producer.publish({"n": n}, routing_key=name, serializer="json")

    assert queue_metrics.queue_depths() == {"test-never-declared": 0, name: 3}


def test_the_gauges_say_the_broker_is_down_instead_of_failing_the_scrape():
    saved = celery_app.conf.broker_url, celery_app.conf.broker_transport_options
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = "redis://127.0.0.1:1/0", {}
    try:
        families = {family.name: family for family in queue_metrics._QueueCollector().collect()}
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved

    assert [s.value for s in families["chatbot_celery_broker_up"].samples] == [0]
    assert families["chatbot_celery_queue_depth"].samples == []
