"""Admission of LLM calls: a provider's rate and concurrency bounds, and fairness between workspaces.

Before a call, a reply takes (1) one of its workspace's in-flight places (LLM_WORKSPACE_MAX_IN_FLIGHT),
so one tenant's burst cannot hold every worker thread while another tenant's single message waits;
(2) one of the provider's concurrency places (LLM_PROVIDER_CONCURRENCY); (3) the provider's next rate
slot (LLM_PROVIDER_RPM, GCRA in the shared pacer), waited for in the worker thread when it is near.
Whatever is not available now raises `Deferred`: the reply task is re-queued with a countdown instead
of calling into a 429 storm that would open the provider's breaker. Slots are handed out in the order
replies ask for them, and a re-queued reply asks again in the order it was deferred.

Places are leases in the shared rate-limit store (Redis, else files): a hit with an id, taken back after
the call; a worker killed mid-call frees its places when the lease window passes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from chatbot import pacing, ratelimit
from chatbot.exceptions import TransientError

AREA = "llm"


class Deferred(TransientError):
    """The call may not start now; ask again in `countdown` seconds. Nothing was called or written."""

    code = "llm_deferred"

    def __init__(self, message: str, *, countdown: float, reason: str) -> None:
        super().__init__(message)
        self.countdown = countdown
        self.reason = reason  # workspace_in_flight | provider_concurrency | provider_rate


@dataclass(frozen=True)
class Bounds:
    rpm: int  # 0: unbounded
    concurrency: int  # 0: unbounded


def bounds_for(provider: str) -> Bounds:
    return Bounds(
        rpm=int(settings.LLM_PROVIDER_RPM.get(provider, 0)),
        concurrency=int(settings.LLM_PROVIDER_CONCURRENCY.get(provider, 0)),
    )


def release_db_connection() -> None:
    """Close this thread's database connection before a long wait (a rate slot, an LLM call): the llm
    worker runs ~100 threads, and PostgreSQL allows 100 connections in all by default. Inside a
    transaction (tests, a caller's atomic block) the connection is left alone."""
    if not connection.in_atomic_block:
        connection.close()


def _lease_window() -> float:
    # Longer than any admitted call can last (its slot wait plus the reply budget's ceiling).
    return float(settings.LLM_MAX_SLOT_WAIT) + 120.0


@contextmanager
def admitted(*, provider: str, quota_key: str, workspace_id: int) -> Iterator[float]:
    """Hold the places and the rate slot for one call to `provider`; yields the seconds waited.

    `quota_key` names the quota the call counts against (the provider's shared one, or a workspace's
    own server). Raises Deferred, having taken nothing, when the call may not start soon.
    """
    bounds = bounds_for(provider)
    store = ratelimit.limiter(AREA)
    window = _lease_window()
    lease = uuid.uuid4().hex
    held: list[str] = []
    try:
        workspace_key = f"in-flight:workspace-{workspace_id}"
        if not store.hit(workspace_key, settings.LLM_WORKSPACE_MAX_IN_FLIGHT, window, hit_id=lease).allowed:
            raise Deferred(
                "the workspace has its share of LLM calls in flight",
                countdown=settings.LLM_DEFER_SECONDS,
                reason="workspace_in_flight",
            )
        held.append(workspace_key)
        if bounds.concurrency:
            provider_key = f"in-flight:{quota_key}"
            if not store.hit(provider_key, bounds.concurrency, window, hit_id=lease).allowed:
                raise Deferred(
                    "the provider's concurrency is reached",
                    countdown=settings.LLM_DEFER_SECONDS,
                    reason="provider_concurrency",
                )
            held.append(provider_key)
        waited = 0.0
        if bounds.rpm:
            # A little under the quota: network jitter bunches calls paced at exactly the limit.
            rate = bounds.rpm / 60.0 * settings.LLM_RATE_HEADROOM
            slot = pacing.pacer().reserve(
                f"llm-rate:{quota_key}", rate=rate, burst=1, max_wait=settings.LLM_MAX_SLOT_WAIT
            )
            if not slot.reserved:
                raise Deferred(
                    "the provider's rate limit is reached",
                    countdown=max(slot.wait - settings.LLM_MAX_SLOT_WAIT, settings.LLM_DEFER_SECONDS),
                    reason="provider_rate",
                )
            if slot.wait > 0:
                release_db_connection()
                time.sleep(slot.wait)
                waited = slot.wait
        yield waited
    finally:
        for key in held:
            store.forget(key, lease)
