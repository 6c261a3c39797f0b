"""Celery application: queues, reliability defaults and the database beat scheduler."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_init
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu import Exchange, Queue
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

QUEUES = ("inbound", "llm", "outbound", "campaigns", "default", "whatsapp_web", "local_models")
RETRY_BACKOFF_MAX = 600  # seconds; the Redis visibility timeout (settings) must stay above it


def _queue(name: str) -> Queue:
    if settings.BROKER_QUEUE_TYPE == "quorum":
        # A topic exchange per queue: Celery sends a countdown through RabbitMQ's native delayed delivery,
        # which cannot route through direct exchanges (quorum queues cannot hold messages in a worker).
        return Queue(
            name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"}
        )
    return Queue(name)


class BaseTask(Task[..., Any]):  # the base of every task, whatever its signature
    """Every task retries transient failures with exponential backoff and jitter unless it says otherwise.

    Transient: the database, Redis or the network blinked. Anything else is a bug or bad data, which
    retrying would only repeat; the sweeper still finds work the database says is unfinished.
    """

    autoretry_for = (
        OperationalError,
        InterfaceError,
        RedisConnectionError,
        RedisTimeoutError,
        ConnectionError,
    )
    retry_backoff = True
    retry_backoff_max = RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = 5

    def apply_async(self, *args: Any, **options: Any) -> Any:
        if settings.BROKER_QUEUE_TYPE == "quorum":
            _whole_seconds(options)
        return super().apply_async(*args, **options)


def _whole_seconds(options: dict[str, Any]) -> None:
    """RabbitMQ's native delayed delivery (quorum queues) counts whole seconds and refuses a countdown
    under one (kombu raises): round a wait up, so a task never runs before its time (a reply's debounce
    of 0.3 s becomes 1 s there)."""
    eta = options.pop("eta", None)
    countdown = options.get("countdown")
    if isinstance(eta, datetime):
        countdown = (eta - datetime.now(UTC)).total_seconds()
    if countdown is not None and countdown > 0:
        options["countdown"] = math.ceil(countdown)
    else:
        options.pop("countdown", None)


app = Celery("chatbot", task_cls=BaseTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,  # a task is removed from the queue only once it has finished...
    task_reject_on_worker_lost=True,  # ...and goes back to it when its worker is killed
    worker_prefetch_multiplier=1,
    # Each worker also listens on a queue of its own (`<node name>.dq2`): worker-web chains its slices
    # there, so each worker-web process keeps driving the channels it holds (apps/whatsapp_web/tasks.py).
    worker_direct=True,
    task_default_queue="default",
    task_queues=[_queue(name) for name in QUEUES],
    task_create_missing_queues=False,
    # Convention: a task's name starts with its queue ("outbound.number_send" runs on "outbound").
    task_routes={f"{name}.*": {"queue": name} for name in QUEUES},
    broker_connection_retry_on_startup=True,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    # Synced into django-celery-beat's tables at start; the database is the source of truth for
    # work, and this sweep re-enqueues whatever the broker lost.
    beat_schedule={
        "queue-sweep": {"task": "default.queue_sweep", "schedule": 30.0},
        "live-events-cleanup": {"task": "default.live_events_cleanup", "schedule": 3600.0},
        "alert-conditions-sweep": {"task": "default.alert_conditions_sweep", "schedule": 60.0},
        # The messages after the index's cursor are searched one by one: keep them few.
        "search-index-update": {"task": "default.search_index_update", "schedule": 5.0},
        "campaigns-tick": {"task": "campaigns.campaigns_tick", "schedule": 10.0},
        "booking-reminders-tick": {"task": "campaigns.booking_reminders_tick", "schedule": 60.0},
        "analytics-rollups-refresh": {"task": "default.analytics_rollups_refresh", "schedule": 300.0},
        # Starts worker-web's chain of slices (a no-op while one runs); see apps/whatsapp_web/tasks.py.
        "whatsapp-web-drive": {"task": "whatsapp_web.sessions_drive", "schedule": 60.0},
    },
    worker_hijack_root_logger=False,
    timezone="UTC",
)
# Celery's Django fixup closes the database connections around every task, so each task opened a
# new PostgreSQL connection (bench/: 1,420 connections for 2,000 messages). Keep them open as the web
# process does, closing one only when it broke or outlived CONN_MAX_AGE (handlers below).
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_broken_or_old_connections(**kwargs: Any) -> None:
    from django.db import close_old_connections

    close_old_connections()


@task_prerun.connect
def _log_context_for_task(
    task_id: str | None = None, task: Task[..., Any] | None = None, **kwargs: Any
) -> None:
    from chatbot import log_context

    # A worker thread runs one task after another: the last task's ids must not stay on this one's lines.
    log_context.clear()
    log_context.bind(task_id=task_id, task=getattr(task, "name", None))


@worker_init.connect
def _declare_every_queue(**kwargs: Any) -> None:
    # Native delayed delivery binds every queue of the app to its exchange, also those this worker
    # does not consume; one missing exchange switches it off for the whole worker. Declare them all.
    if settings.BROKER_QUEUE_TYPE != "quorum":
        return
    with app.connection_for_write() as conn:
        for queue in app.amqp.queues.values():
            queue(conn.default_channel).declare()


@worker_init.connect
def _import_litellm_before_work(**kwargs: Any) -> None:
    # litellm takes seconds to import: pay it once at start (and before forking, so children
    # share it) rather than inside the first customer's reply.
    from apps.assistant.providers import warm_up

    warm_up()


@app.task(name="default.ping")
def ping() -> str:
    return "pong"
