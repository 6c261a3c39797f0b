"""The database, not the broker, is the source of truth: re-enqueue work the broker lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.conversations.services.outbound import stuck_processing_settle
from apps.conversations.services.replies import NOT_IN_HISTORY
from apps.conversations.services.sender import lease_live, numbers_with_due_work

GRACE = timedelta(seconds=60)  # leave fresh inbound rows to the tasks already on their way
# A customer turn still unanswered this long after it was stored lost its reply task (debounce and
# reply pacing wait far less); older turns are left to people, a late bot answer would confuse.
TURN_GRACE = timedelta(minutes=2)
TURN_HORIZON = timedelta(hours=1)


def turns_unanswered(*, now: datetime | None = None, limit: int = 500) -> list[tuple[int, int]]:
    """(conversation id, message id) of bot conversations whose last customer question is processed
    and has no answer: no reply under its key, and nothing after it but bot replies to earlier turns
    and rows that answer nothing (a reaction)."""
    moment = now or timezone.now()
    # A bot reply answers the turn its key names: the reply to an earlier turn, written while this
    # message came in, sorts after it without having seen it (replies._turns reads keys for the same
    # reason). Counting it hid this turn from the sweep for good once its reply task was lost.
    newer = (
        Message.objects.filter(conversation_id=OuterRef("conversation_id"), pk__gt=OuterRef("pk"))
        .exclude(author=Message.Author.BOT, dedupe_key__startswith="reply:")
        .exclude(handled_as__in=NOT_IN_HISTORY)
    )
    own_reply = Message.objects.filter(
        workspace_id=OuterRef("workspace_id"),
        dedupe_key=Concat(Value("reply:"), Cast(OuterRef("pk"), output_field=CharField())),
    ).exclude(dedupe_key="")  # the unique index on keys is partial: this lets PostgreSQL use it
    rows = (
        Message.objects.filter(
            direction=Message.Direction.INBOUND,
            handled_as="",  # a question; a reaction or a keyword is never answered by the bot
            processed_at__isnull=False,
            created_at__lt=moment - TURN_GRACE,
            created_at__gte=moment - TURN_HORIZON,
            conversation__status=Conversation.Status.OPEN,
            reply_attempts__lt=settings.REPLY_MAX_ATTEMPTS,  # spent: the turn is a person's now
        )
        .exclude(body="")
        .exclude(Exists(newer))
        .exclude(Exists(own_reply))
        .values_list("conversation_id", "pk")[:limit]
    )
    return [(conversation_id, message_id) for conversation_id, message_id in rows if conversation_id]


def sweep(*, processing_timeout: timedelta) -> dict[str, int]:
    from apps.conversations.tasks import inbound_message_process, number_send, reply_generate

    now = timezone.now()
    # Oldest first, which is also what makes PostgreSQL walk the small partial index of unprocessed
    # inbound rows: unordered, the LIMIT tempted it into scanning the whole table (bench/growth.py).
    inbound_ids = list(
        Message.objects.filter(
            direction=Message.Direction.INBOUND, processed_at__isnull=True, created_at__lt=now - GRACE
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:1000]
    )
    for message_id in inbound_ids:
        inbound_message_process.delay(message_id)
    # Settled first: a conversation waiting behind a stuck send is free to go on.
    settled = stuck_processing_settle(older_than=processing_timeout)
    # Outbound rows are not re-queued one by one: every number with due work gets a live sender.
    waiting = [cid for cid in numbers_with_due_work(now=now) if not lease_live(cid)]
    for channel_id in waiting:
        number_send.delay(channel_id)
    turns = turns_unanswered(now=now)
    for conversation_id, message_id in turns:
        reply_generate.delay(conversation_id, message_id)  # one reply per turn: a duplicate is a no-op
    return {
        "inbound": len(inbound_ids),
        "outbound": len(waiting),
        "turns": len(turns),
        "unknown_outcome": settled,
    }
