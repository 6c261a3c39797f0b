"""Conversation status: the one place it changes.

Every move is a conditional UPDATE on the status the database holds now, not on the copy a caller
read earlier, so a move decided on a stale read is refused instead of undoing a newer one (a
take-over landing after a close would reopen it). Like the send states (outbound.SEND_TRANSITIONS).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.conversations.models import Contact, Conversation
from apps.live.services import live_publish

logger = logging.getLogger(__name__)

C = Conversation.Status
LIVE = frozenset({C.OPEN, C.PENDING_HUMAN, C.HUMAN})
TO_A_PERSON = frozenset({C.OPEN})  # a person already has it otherwise: leave them be
TO_PEOPLE = frozenset({C.PENDING_HUMAN, C.HUMAN})


class Move(StrEnum):
    TAKEOVER = "takeover"  # staff take it, or reply (which takes it if nobody had)
    HANDBACK = "handback"  # staff give it back to the bot
    IDLE_HANDBACK = "idle_handback"  # the person went quiet for takeover_idle_minutes
    CLOSE = "close"
    CUSTOMER_HANDOFF = "customer_handoff"  # the customer asked for a person
    MODEL_HANDOFF = "model_handoff"  # the assistant said it cannot help
    ASSISTANT_OFF = "assistant_off"  # the workspace switched the bot off
    REPLY_FAILED = "reply_failed"  # the bot's reply failed REPLY_MAX_ATTEMPTS times
    SET_ASIDE = "set_aside"  # a customer message failed INBOUND_MAX_ATTEMPTS times
    ALERT_HANDOFF = "alert_handoff"  # an alert rule with "hand to a person" matched
    REOPEN = "reopen"  # the customer wrote within CONVERSATION_REOPEN_MINUTES of the close


# move -> (statuses it may start from, status it ends in). A closed conversation is history: only the
# customer's message within CONVERSATION_REOPEN_MINUTES reopens it (conversation_live_for); a later
# one starts a new conversation.
TRANSITIONS: dict[Move, tuple[frozenset[str], str]] = {
    Move.TAKEOVER: (LIVE, C.HUMAN),
    Move.HANDBACK: (frozenset({C.PENDING_HUMAN, C.HUMAN}), C.OPEN),
    Move.IDLE_HANDBACK: (frozenset({C.HUMAN}), C.OPEN),
    Move.CLOSE: (LIVE, C.CLOSED),
    Move.CUSTOMER_HANDOFF: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.MODEL_HANDOFF: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.ASSISTANT_OFF: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.REPLY_FAILED: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.SET_ASIDE: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.ALERT_HANDOFF: (TO_A_PERSON, C.PENDING_HUMAN),
    Move.REOPEN: (frozenset({C.CLOSED}), C.OPEN),
}


@transaction.atomic
def conversation_move(
    *, conversation: Conversation, move: Move, where: Q | None = None, **fields: Any
) -> bool:
    """Apply `move` if the status in the database (and `where`, when given) still allows it.

    True when it happened: the row and `conversation` then hold the new status and `fields` (plain
    values), and a live event is recorded in the caller's transaction (screens are rung after
    commit). False when refused: nothing is written and `conversation.status` is re-read, so the
    caller can tell a closed conversation from one already in the wanted state.
    """
    allowed_from, to = TRANSITIONS[move]
    changes: dict[str, Any] = {"status": to, **fields}
    if to == C.CLOSED:
        changes.setdefault("closed_at", timezone.now())
    handed = to in TO_PEOPLE and "handed_at" not in changes
    now = timezone.now()
    rows = Conversation.objects.filter(pk=conversation.pk, status__in=allowed_from)
    if where is not None:
        rows = rows.filter(where)
    # The first hand-off's time stays: on the row (Coalesce) and on the caller's copy (below).
    extra = {"handed_at": Coalesce(F("handed_at"), Value(now))} if handed else {}
    if not rows.update(**changes, **extra):
        current = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).first()
        logger.info("conversation %s: %s refused from %s", conversation.pk, move, current)
        if current is not None:
            conversation.status = current
        return False
    for name, value in changes.items():
        setattr(conversation, name, value)
    if handed and conversation.handed_at is None:
        conversation.handed_at = now
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    return True


def conversation_live_for(*, channel_id: int, workspace_id: int, contact: Contact) -> Conversation:
    """The contact's live conversation on this number; else the one closed less than
    CONVERSATION_REOPEN_MINUTES ago, reopened; else a new one.

    The row stays locked until the caller's transaction ends, so a close waits for the message being
    processed instead of landing between the read and the decisions taken on it.
    """
    with transaction.atomic():
        live = (
            Conversation.objects.select_for_update()
            .filter(channel_id=channel_id, contact=contact, status__in=LIVE)
            .first()
        )
        if live is not None:
            return live
        reopened = _recently_closed(channel_id=channel_id, contact=contact)
        if reopened is not None:
            try:
                with transaction.atomic():
                    moved = conversation_move(
                        conversation=reopened, move=Move.REOPEN, closed_at=None, assignee=None
                    )
            except IntegrityError:  # another message opened a live one meanwhile: it wins below
                moved = False
            if moved:
                return Conversation.objects.select_for_update().get(pk=reopened.pk)
        try:
            with transaction.atomic():
                return Conversation.objects.create(
                    workspace_id=workspace_id, channel_id=channel_id, contact=contact
                )
        except IntegrityError:  # opened concurrently
            return Conversation.objects.select_for_update().get(
                channel_id=channel_id, contact=contact, status__in=LIVE
            )


def _recently_closed(*, channel_id: int, contact: Contact) -> Conversation | None:
    minutes = settings.CONVERSATION_REOPEN_MINUTES
    if minutes <= 0:
        return None
    return (
        Conversation.objects.filter(
            channel_id=channel_id,
            contact=contact,
            status=C.CLOSED,
            closed_at__gte=timezone.now() - timedelta(minutes=minutes),
        )
        .order_by("-closed_at")
        .first()
    )
