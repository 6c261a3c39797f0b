"""Celery on RabbitMQ with quorum queues (issue 18 item 5), tested the way the Redis broker is
(tests/test_pipeline_worker.py): a signed webhook reaches a gunicorn web process that publishes to
RabbitMQ, a Celery worker process takes the inbound, llm and outbound tasks from quorum queues (the
reply's short countdown travels through RabbitMQ's native delayed delivery) and the bot's reply reaches
the Graph stand-in once. Needs PostgreSQL, Redis (cache, channel layer, shared state) and RabbitMQ."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import amqp
import pytest
from django.conf import settings as django_settings
from django.db import connection
from kombu import Connection

from celery_app import QUEUES
from tests.test_metrics_workers import _start
from tests.test_pipeline_worker import (  # noqa: F401 - worker: the fixture, on the broker below
    APP_SECRET,
    bodies,
    make_channel,
    wait_for,
    worker,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow]


@pytest.fixture
def fresh_queues(rabbitmq_url) -> Iterator[None]:
    """Our queues deleted before and after: a test starts from empty queues of the configured type."""

    def drop() -> None:
        with Connection(rabbitmq_url, connect_timeout=5) as conn:
            for name in QUEUES:
                cast(Any, conn.default_channel).queue_delete(name)

    drop()
    yield
    drop()


def _env(rabbitmq_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": rabbitmq_url,
        "FERNET_KEYS": ",".join(django_settings.FERNET_KEYS),
        "DATA_DIR": str(tmp_path),
        **extra,
    }


def test_the_queues_are_declared_as_quorum_queues(postgres, redis_url, rabbitmq_url, fresh_queues, tmp_path):
    declare = (
        "from celery_app import app\n"
        "with app.connection_for_write() as conn:\n"
        "    for queue in app.amqp.queues.values():\n"
        "        queue(conn.default_channel).declare()\n"
        "print(sorted((q.name, q.exchange.type, q.queue_arguments['x-queue-type']) for q in app.amqp.queues.values()))\n"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", declare],
        cwd=ROOT,
        env=_env(rabbitmq_url, redis_url, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(sorted((name, "topic", "quorum") for name in QUEUES))
    # RabbitMQ itself says so: the same queue declared classic is refused (406 PRECONDITION_FAILED).
    with Connection(rabbitmq_url, connect_timeout=5) as conn:
        with pytest.raises(amqp.exceptions.PreconditionFailed):
            conn.default_channel.queue_declare("inbound", durable=True, arguments={"x-queue-type": "classic"})


def test_a_wrong_queue_type_is_refused_at_start(tmp_path):
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **os.environ,
            "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
            "BROKER_QUEUE_TYPE": "stream",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "configuration error: BROKER_QUEUE_TYPE is quorum or classic; got 'stream'" in result.stderr


@pytest.fixture
def worker_extra_env(rabbitmq_url, fresh_queues) -> dict[str, str]:
    """The pipeline test's worker (tests/test_pipeline_worker.py), on RabbitMQ."""
    return {"CELERY_BROKER_URL": rabbitmq_url}


@pytest.mark.usefixtures("worker")
@pytest.mark.django_db(transaction=True)
def test_a_customer_message_is_answered_through_rabbitmq_quorum_queues(
    redis_url,
    rabbitmq_url,
    graph_standin,
    llm_standin,
    standin_providers,
    cloud_settings,
    tmp_path,
):
    channel = make_channel("3003")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0.3)
    llm_standin.answer = "Hola, te atiendo por RabbitMQ."
    web_dir = tmp_path / "web"
    web_dir.mkdir()
    db = connection.settings_dict
    web = _start(
        web_dir,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=rabbitmq_url,
    )
    url, _, _ = next(web)
    try:
        graph_standin.configure_webhooks(f"{url}/webhooks/whatsapp/", APP_SECRET)
        graph_standin.inject_inbound("3003", "5215550199", "Hola, ¿abren hoy?", name="Eva")

        def answered() -> bool:
            """the bot's reply reached the Graph API through the quorum queues"""
            return bodies(graph_standin) == ["Hola, te atiendo por RabbitMQ."]

        wait_for(answered, timeout=90)
        assert len(llm_standin.chat_requests()) == 1
        log = (tmp_path / "worker.log").read_text()
        assert "Global QoS is disabled" in log  # Celery saw the quorum queues
        # Every queue bound to the delayed-delivery exchanges (one missing switches it off for the worker).
        assert "Failed to bind queue" not in log and "delayed delivery will not be available" not in log
        assert "countdown must be a positive number" not in log
    finally:
        next(web, None)  # stops gunicorn
