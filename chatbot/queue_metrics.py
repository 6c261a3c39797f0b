"""Celery queue depths as gauges, read from the broker at each scrape (Redis, RabbitMQ or the
embedded filesystem broker alike, through kombu's passive queue declaration).

A queue's depth counts messages waiting to be taken; a task a worker holds (running, or waiting for
its countdown) is not in it. An empty Redis queue has no key: it shows 0, not a gap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kombu.exceptions import ChannelError, OperationalError
from prometheus_client.core import GaugeMetricFamily

from celery_app import QUEUES
from celery_app import app as celery_app
from chatbot import prometheus

logger = logging.getLogger(__name__)


def queue_depths() -> dict[str, int]:
    """Messages waiting in each of the project's queues."""
    depths: dict[str, int] = {}
    with celery_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        for name in QUEUES:
            # A channel per queue: RabbitMQ closes the channel on which a missing queue was asked for.
            channel: Any = conn.channel()  # kombu's stubs name no queue_declare on it
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except ChannelError:
                depths[name] = 0  # never declared, or (Redis) empty
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001, S110 - already closed by the broker after a 404
                    pass
    return depths


class _QueueCollector(prometheus.LiveCollector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "chatbot_celery_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        up = GaugeMetricFamily("chatbot_celery_broker_up", "1 when the broker answered this scrape.")
        try:
            depths = queue_depths()
        except (OperationalError, OSError, ChannelError):  # a scrape must not fail with the broker
            logger.warning("queue depths unavailable for /metrics", exc_info=True)
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            for name, depth in depths.items():
                family.add_metric([name], depth)
        yield family
        yield up


prometheus.register_live(_QueueCollector())
