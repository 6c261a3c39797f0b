"""WhatsApp Web sessions in /metrics, read from the database at each scrape (worker-web writes them)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from chatbot import prometheus

logger = logging.getLogger(__name__)


class _SessionsCollector(prometheus.LiveCollector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from apps.whatsapp_web.models import WebSession  # noqa: PLC0415 - models load after apps

        states = GaugeMetricFamily(
            "chatbot_whatsapp_web_sessions",
            "WhatsApp Web sessions by state (all workspaces).",
            labels=["state"],
        )
        age = GaugeMetricFamily(
            "chatbot_whatsapp_web_heartbeat_age_seconds",
            "Seconds since worker-web's last heartbeat, per WhatsApp Web channel.",
            labels=["channel"],
        )
        try:
            rows = list(
                WebSession.objects.filter(channel__is_active=True).values_list(
                    "channel_id", "state", "heartbeat_at"
                )
            )
        except Exception:  # a scrape must not fail with the database; the gap itself is the signal
            logger.warning("WhatsApp Web sessions unavailable for /metrics", exc_info=True)
            return
        now = timezone.now()
        counts = dict.fromkeys(WebSession.State.values, 0)
        for channel_id, state, heartbeat_at in rows:
            counts[state] = counts.get(state, 0) + 1
            if heartbeat_at is not None:
                age.add_metric([str(channel_id)], (now - heartbeat_at).total_seconds())
        for state, count in counts.items():
            states.add_metric([state], count)
        yield states
        yield age


prometheus.register_live(_SessionsCollector())
