"""The assistant's Prometheus metrics. Recorded in Celery workers, shown by the web's /metrics
(see chatbot.shared_metrics); imported at start-up so /metrics lists them before the first reply."""

from __future__ import annotations

from chatbot.shared_metrics import SharedCounter, SharedHistogram

PROVIDER_LATENCY = SharedHistogram(
    "chatbot_assistant_provider_latency_seconds",
    "Time of one LLM provider call, by provider and outcome.",
    ["provider", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
REPLY_CACHE = SharedCounter(
    "chatbot_assistant_reply_cache", "Reply cache lookups (history-less questions only).", ["result"]
)
