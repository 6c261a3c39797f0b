"""Campaigns: the one place a campaign's status changes.

    draft <-> scheduled -> running <-> paused
    running -> completed
    draft | scheduled | running | paused -> cancelled
    scheduled | running | paused -> failed

Every move is a conditional UPDATE on the status the database holds now, not on the copy a caller
read earlier (like conversations.services.status): a pause from a screen that still shows "running"
after the campaign completed is refused instead of reviving it, and of two moves racing one wins.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.campaigns.models import Campaign

logger = logging.getLogger(__name__)

St = Campaign.Status
ENDED = frozenset({St.COMPLETED, St.CANCELLED, St.FAILED})
PAUSED_BY_STAFF = "staff"


class Move(StrEnum):
    SCHEDULE = "schedule"  # staff: send at scheduled_at (now, or later)
    UNSCHEDULE = "unschedule"  # staff: back to a draft, to change it
    START = "start"  # the scheduler, once scheduled_at has come
    PAUSE = "pause"  # staff
    AUTO_PAUSE = "auto_pause"  # Meta said stop: 131048 (spam rate limit), or the template was paused
    RESUME = "resume"  # staff
    COMPLETE = "complete"  # every recipient was sent to (or skipped with a reason)
    CANCEL = "cancel"  # staff, at any moment before it ends; nobody else is sent to
    FAIL = "fail"  # it cannot go on: the template or the number is gone or disabled


# move -> (statuses it may start from, status it ends in). An ended campaign is history: no move leaves it.
TRANSITIONS: dict[Move, tuple[frozenset[str], str]] = {
    Move.SCHEDULE: (frozenset({St.DRAFT}), St.SCHEDULED),
    Move.UNSCHEDULE: (frozenset({St.SCHEDULED}), St.DRAFT),
    Move.START: (frozenset({St.SCHEDULED}), St.RUNNING),
    Move.PAUSE: (frozenset({St.RUNNING}), St.PAUSED),
    Move.AUTO_PAUSE: (frozenset({St.RUNNING}), St.PAUSED),
    Move.RESUME: (frozenset({St.PAUSED}), St.RUNNING),
    Move.COMPLETE: (frozenset({St.RUNNING}), St.COMPLETED),
    Move.CANCEL: (frozenset({St.DRAFT, St.SCHEDULED, St.RUNNING, St.PAUSED}), St.CANCELLED),
    Move.FAIL: (frozenset({St.SCHEDULED, St.RUNNING, St.PAUSED}), St.FAILED),
}


def _implied(move: Move, to: str, now: Any) -> dict[str, Any]:
    """What a move writes besides the status (a caller's own fields win)."""
    changes: dict[str, Any] = {"status_changed_at": now}
    if move is Move.UNSCHEDULE:
        changes["scheduled_at"] = None
        changes["recurrence"] = ""  # a series back to a draft: beat's next call finds it gone
    elif move is Move.START:
        changes["started_at"] = now
    elif move is Move.PAUSE:
        changes["paused_reason"] = PAUSED_BY_STAFF
    elif move is Move.RESUME:
        changes["paused_reason"] = ""
    if to in ENDED:
        changes["finished_at"] = now
    return changes


def campaign_move(*, campaign: Campaign, move: Move, where: Q | None = None, **fields: Any) -> bool:
    """Apply `move` if the status in the database (and `where`, when given) still allows it.

    True when it happened: the row and `campaign` then hold the new status and `fields` (plain
    values, e.g. scheduled_at for SCHEDULE, paused_reason for AUTO_PAUSE, failure for FAIL). False when
    refused: nothing is written and `campaign.status` is re-read, so the caller can tell a campaign
    already ended from one already in the wanted state. Raises ValueError for a move that needs a field
    it was not given (SCHEDULE without a time, AUTO_PAUSE without Meta's reason).
    """
    if move is Move.SCHEDULE and fields.get("scheduled_at") is None:
        raise ValueError("A campaign is scheduled at a time (now, or later).")
    if move is Move.AUTO_PAUSE and not fields.get("paused_reason"):
        raise ValueError("An automatic pause says why (Meta's reason).")
    allowed_from, to = TRANSITIONS[move]
    changes = {**_implied(move, to, timezone.now()), **fields, "status": to}
    rows = Campaign.objects.filter(pk=campaign.pk, status__in=allowed_from)
    if where is not None:
        rows = rows.filter(where)
    if not rows.update(**changes):
        current = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
        logger.info("campaign %s: %s refused from %s", campaign.pk, move, current)
        if current is not None:
            campaign.status = current
        return False
    for name, value in changes.items():
        setattr(campaign, name, value)
    return True
