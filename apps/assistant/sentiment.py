"""A customer message's sentiment told by the workspace's LLM providers: the option of a sentiment
alert rule (`classifier: llm`; alerts scores offline by default, apps/alerts/sentiment.py).

Runs on the llm queue, never in a request or in the inbound transaction. The providers are tried in
the workspace's fallback order, each behind its circuit breaker and admission bounds, as for replies.
"""

from __future__ import annotations

import logging
import time

from apps.assistant import admission, metrics, providers, services
from apps.assistant.language import fold
from apps.assistant.providers import ProviderError
from apps.assistant.reply import PROVIDER_IS_UP

logger = logging.getLogger(__name__)

PROMPT = (
    "You read one message a customer sent to a business on WhatsApp. Answer with one word: "
    "negative if the customer is unhappy, complains, or reports something failing them; "
    "neutral or positive otherwise. The message may be in Spanish or English."
)
# The word answered, as a score on the offline scorer's scale (-1 .. 1), so one threshold serves both.
SCORES = {"negative": -0.8, "negativo": -0.8, "neutral": 0.0, "positive": 0.8, "positivo": 0.8}
MAX_CHARS = 1000
TIMEOUT_SECONDS = 10.0


def sentiment_classify(*, workspace_id: int, text: str) -> float | None:
    """The first usable answer's score (-0.8 negative, 0 neutral, 0.8 positive); None when no
    provider gave one. Raises admission.Deferred when the first provider tried is only busy."""
    ai = services.assistant_settings_get_or_create(workspace_id=workspace_id)
    specs = providers.provider_specs(workspace_id=workspace_id, fallback_order=ai.fallback_order)
    messages = [{"role": "system", "content": PROMPT}, {"role": "user", "content": text[:MAX_CHARS]}]
    tried = False
    for spec in specs:
        guard = spec.breaker
        if not guard.allow():
            continue
        called = time.perf_counter()
        try:
            with admission.admitted(provider=spec.name, quota_key=guard.name, workspace_id=workspace_id):
                tried = True
                admission.release_db_connection()
                called = time.perf_counter()
                answer = providers.complete(
                    spec,
                    messages,
                    timeout=min(ai.provider_timeout_seconds, TIMEOUT_SECONDS),
                    temperature=0.0,
                    max_tokens=5,
                )
        except admission.Deferred:
            if not tried:
                raise
            continue
        except ProviderError as error:
            metrics.PROVIDER_LATENCY.observe(spec.name, error.outcome, value=time.perf_counter() - called)
            providers.log_failure(error)
            if error.outcome in PROVIDER_IS_UP:
                guard.success()
            else:
                guard.failure()
            continue
        guard.success()
        metrics.PROVIDER_LATENCY.observe(spec.name, "ok", value=time.perf_counter() - called)
        words = fold(answer.text).replace(".", " ").split()
        score = SCORES.get(words[0]) if words else None
        if score is not None:
            return score
        logger.warning("LLM provider %s answered no sentiment word; trying the next", spec.name)
    return None
