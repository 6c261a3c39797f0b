"""The conversation pipeline's Prometheus metrics. The counters are recorded in Celery workers and
shown by the web's /metrics (see chatbot.shared_metrics); the backlog is read from the database at
each scrape. Imported at start-up so /metrics lists them from the start."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from chatbot import prometheus
from chatbot.shared_metrics import SharedCounter

logger = logging.getLogger(__name__)

INBOUND_SET_ASIDE = SharedCounter(
    "chatbot_conversations_inbound_set_aside",
    "Customer messages set aside after failing INBOUND_MAX_ATTEMPTS times (see the runbook).",
    [],
)
OUTBOUND_FAILED = SharedCounter(
    "chatbot_outbound_failed",
    "Outbound messages that failed for good: refused at sending (by reason) or reported failed by a status "
    "webhook (reason status_webhook).",
    ["reason"],
)
REPLY_GIVEN_UP = SharedCounter(
    "chatbot_conversations_reply_given_up",
    "Customer turns whose bot reply failed REPLY_MAX_ATTEMPTS times; each conversation went to a person.",
    [],
)


class _BacklogCollector(prometheus.LiveCollector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from apps.conversations.selectors import inbound_backlog  # noqa: PLC0415 - models load after apps

        count = GaugeMetricFamily(
            "chatbot_inbound_backlog", "Customer messages stored and not processed yet (all workspaces)."
        )
        age = GaugeMetricFamily(
            "chatbot_inbound_backlog_oldest_seconds", "Age of the oldest of them (0 when there is none)."
        )
        try:
            waiting, oldest = inbound_backlog()
        except Exception:  # a scrape must not fail with the database; the gap itself is the signal
            logger.warning("inbound backlog unavailable for /metrics", exc_info=True)
            return
        count.add_metric([], waiting)
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield count
        yield age


class _SearchIndexCollector(prometheus.LiveCollector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import connection  # noqa: PLC0415

        from apps.conversations.selectors import search_index_lag  # noqa: PLC0415 - models load after apps

        lag = GaugeMetricFamily(
            "chatbot_search_index_lag_seconds",
            "Age of the oldest message the inbox search's indexer has not read (0 when none); those are "
            "searched one by one, so a growing figure slows searches (is beat running?).",
        )
        history = GaugeMetricFamily(
            "chatbot_search_index_backfill_ids", "Message ids of history left to index (0 once done)."
        )
        try:
            # SQLite searches the messages themselves: no index, so never behind.
            seconds, left = search_index_lag() if connection.vendor == "postgresql" else (0.0, 0)
        except Exception:  # a scrape must not fail with the database
            logger.warning("search index lag unavailable for /metrics", exc_info=True)
            return
        lag.add_metric([], seconds)
        history.add_metric([], left)
        yield lag
        yield history


prometheus.register_live(_BacklogCollector())
prometheus.register_live(_SearchIndexCollector())
