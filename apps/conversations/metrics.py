"""The conversation pipeline's Prometheus metrics. Recorded in Celery workers, shown by the web's
/metrics (see chatbot.shared_metrics); imported at start-up so /metrics lists them from the start."""

from __future__ import annotations

from chatbot.shared_metrics import SharedCounter

INBOUND_SET_ASIDE = SharedCounter(
    "conversations_inbound_set_aside",
    "Customer messages set aside after failing INBOUND_MAX_ATTEMPTS times (see the runbook).",
    [],
)
REPLY_GIVEN_UP = SharedCounter(
    "conversations_reply_given_up",
    "Customer turns whose bot reply failed REPLY_MAX_ATTEMPTS times; each conversation went to a person.",
    [],
)
