"""Live events: a row per change (the truth) and a wake-up on the channel layer (the doorbell)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from apps.live.models import LiveEvent

logger = logging.getLogger(__name__)

KEEP_FOR = timedelta(days=1)
WAKEUP = {"type": "live.wakeup"}


def workspace_group(workspace_id: int) -> str:
    return f"ws-{workspace_id}"


def _ring(workspace_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(workspace_group(workspace_id), WAKEUP)
    except Exception:  # noqa: BLE001 - a lost wake-up only delays the screen; the row stays
        logger.warning("live wake-up for workspace %s not sent", workspace_id, exc_info=True)


def live_publish(
    *, workspace_id: int, kind: str, conversation_id: int | None = None, payload: dict[str, Any] | None = None
) -> LiveEvent:
    """Record the event inside the caller's transaction; ring the workspace's group after commit.

    Rolled back with the caller's change, so a screen never hears of something that did not happen.
    """
    event = LiveEvent.objects.create(
        workspace_id=workspace_id, kind=kind, conversation_id=conversation_id, payload=payload or {}
    )
    transaction.on_commit(lambda: _ring(workspace_id))
    return event


def live_events_cleanup(*, older_than: timedelta = KEEP_FOR) -> int:
    deleted, _ = LiveEvent.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
