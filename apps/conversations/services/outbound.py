"""The outbound queue: every message going out is a row moved through SEND_TRANSITIONS.

    pending -> processing -> sent
               processing -> failed -> retry -> processing ...
    pending | retry -> cancelled

A row is claimed with one conditional UPDATE, taken after its pacing slot and just before the
transport call, so two senders never send the same row and `processing` means "may have reached
Meta". A send whose answer was lost (or whose sender died) stays `processing` until a status
webhook (matched by the callback data we sent) or the sweeper settles it: it is never sent again
blindly. Each number's queue is sent by one sender at a time (services/sender.py).

Every send is recorded as a SendAttempt row, saved `in_flight` by the statement that claims the row
and settled by the statement (or transaction) that records the message's outcome: no extra round trip
per message. Its reason, error and wamid are the send's; the message keeps the queue's state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.conversations import metrics
from apps.conversations.models import Conversation, ConversationSettings, Message, SendAttempt
from apps.conversations.selectors import window_open
from apps.conversations.services.optout import contact_set_opt_out
from apps.conversations.text import TEXT_LIMIT, split_text
from apps.conversations.transport import (
    REASON_CIRCUIT_OPEN,
    REASON_OPTED_OUT,
    REASON_RATE_LIMITED,
    REASON_RECIPIENT_RATE_LIMITED,
    REASON_WINDOW_CLOSED,
    OutboundRequest,
    SendError,
    transport_for,
)
from apps.live.models import LiveEvent
from apps.live.services import live_publish, live_publish_many
from chatbot.exceptions import Conflict
from chatbot.pacing import pacer

logger = logging.getLogger(__name__)

S = Message.SendState
A = SendAttempt.Outcome
REASON_UNKNOWN_OUTCOME = "unknown_outcome"
STUCK_DETAIL = "No answer from WhatsApp and no status webhook; not re-sent automatically."
SEND_TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.PROCESSING, S.CANCELLED},
    S.PROCESSING: {S.SENT, S.FAILED},
    S.FAILED: {S.RETRY},
    S.RETRY: {S.PROCESSING, S.CANCELLED},
    S.SENT: set(),
    S.CANCELLED: set(),
}
BACKOFF_BASE = 2.0  # seconds; attempt n waits about BASE * 2**(n-1), with full jitter
BACKOFF_MAX = 600.0
RATE_LIMIT_HOLD = 0.25  # seconds without sends after a 130429: a quarter of Meta's 1 s window drains


def _sources(target: str) -> list[str]:
    return [state for state, targets in SEND_TRANSITIONS.items() if target in targets]


def _transition(message_id: int, target: str, *, sources: list[str] | None = None, **changes: Any) -> bool:
    """Atomically move a row to `target` from any legal source state; False when it was not there."""
    allowed = sources if sources is not None else _sources(target)
    illegal = set(allowed) - set(_sources(target))
    if illegal:
        raise ValueError(f"illegal transition {sorted(illegal)} -> {target}")
    return bool(
        Message.objects.filter(pk=message_id, send_state__in=allowed).update(send_state=target, **changes)
    )


def conversation_settings(workspace_id: int) -> ConversationSettings:
    found, _ = ConversationSettings.objects.get_or_create(workspace_id=workspace_id)
    return found


def _queued_with_key(workspace_id: int, dedupe_key: str) -> list[Message]:
    match = Q(dedupe_key=dedupe_key) | Q(dedupe_key__startswith=f"{dedupe_key}#")
    return list(Message.objects.filter(match, workspace_id=workspace_id).order_by("pk"))


def message_enqueue(
    *,
    conversation: Conversation,
    author: str,
    body: str = "",
    type: str = "text",
    content: dict[str, Any] | None = None,
    author_user: Any = None,
    dedupe_key: str = "",
    template_fallback: dict[str, Any] | None = None,
    reply_to_wamid: str = "",
    split_at: int = TEXT_LIMIT,
) -> list[Message]:
    """Queue a message (several when a text is longer than WhatsApp allows) and send after commit.

    A non-empty `dedupe_key` makes this idempotent: calling again returns the rows already queued.
    """
    if dedupe_key and (existing := _queued_with_key(conversation.workspace_id, dedupe_key)):
        return existing
    max_attempts = conversation_settings(conversation.workspace_id).max_send_attempts
    if type == "text":
        text = body or str((content or {}).get("body", ""))
        pieces: list[dict[str, Any]] = [
            {"body": part, "preview_url": False} for part in split_text(text, min(split_at, TEXT_LIMIT))
        ]
    else:
        pieces = [content or {}]
    rows: list[Message] = []
    try:
        with transaction.atomic():
            for index, piece in enumerate(pieces):
                key = dedupe_key if index == 0 or not dedupe_key else f"{dedupe_key}#{index}"
                rows.append(
                    Message.objects.create(
                        workspace_id=conversation.workspace_id,
                        channel_id=conversation.channel_id,
                        conversation=conversation,
                        contact_id=conversation.contact_id,
                        direction=Message.Direction.OUTBOUND,
                        author=author,
                        author_user=author_user,
                        type=type,
                        body=str(piece.get("body", body)) if type == "text" else body,
                        payload=piece,
                        template_fallback=template_fallback,
                        reply_to_wamid=reply_to_wamid if index == 0 else "",
                        status=Message.Status.QUEUED,
                        send_state=S.PENDING,
                        dedupe_key=key,
                        max_attempts=max_attempts,
                    )
                )
    except IntegrityError:
        # The same dedupe_key queued concurrently by another worker: theirs stands.
        return _queued_with_key(conversation.workspace_id, dedupe_key)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=timezone.now())
    live_publish(
        workspace_id=conversation.workspace_id,
        kind="message",
        conversation_id=conversation.pk,
        payload={"message_ids": [row.pk for row in rows]},
    )
    channel_id = conversation.channel_id
    transaction.on_commit(lambda: sender_wake(channel_id), robust=True)
    return rows


def message_cancel(*, message: Message) -> Message:
    if not _transition(message.pk, S.CANCELLED, next_attempt_at=None):
        message.refresh_from_db()
        raise Conflict(
            f"A message in state '{message.send_state}' cannot be cancelled.", code="illegal_transition"
        )
    live_publish(
        workspace_id=message.workspace_id,
        kind="status",
        conversation_id=message.conversation_id,
        payload={"message_id": message.pk},
    )
    message.refresh_from_db()
    return message


def message_retry_now(*, message: Message) -> Message:
    """Staff asked to try a failed (or waiting) message again now, with a fresh attempt budget."""
    now = timezone.now()
    if message.send_state == S.FAILED:
        moved = _transition(
            message.pk,
            S.RETRY,
            sources=[S.FAILED],
            next_attempt_at=now,
            max_attempts=F("attempts") + F("max_attempts"),
        )
    else:
        moved = Message.objects.filter(pk=message.pk, send_state=S.RETRY).update(next_attempt_at=now) > 0
    if not moved:
        message.refresh_from_db()
        raise Conflict(
            f"A message in state '{message.send_state}' cannot be retried.", code="illegal_transition"
        )
    channel_id = message.channel_id
    transaction.on_commit(lambda: sender_wake(channel_id), robust=True)
    live_publish(
        workspace_id=message.workspace_id,
        kind="status",
        conversation_id=message.conversation_id,
        payload={"message_id": message.pk},
    )
    message.refresh_from_db()
    return message


def backoff_seconds(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Exponential backoff with full jitter (spreads retries of many messages apart)."""
    return random.uniform(base, min(cap, base * 2 ** max(attempt - 1, 0)))  # noqa: S311 - not for security


@dataclass(frozen=True)
class SendOutcome:
    result: str  # sent, failed, retry, deferred, unknown, skipped
    countdown: float = 0.0  # for "deferred" and "retry": when to run again


def _request_for(message: Message, now: Any) -> OutboundRequest | str:
    """The request to send, or the failure reason when it must not go out."""
    contact = message.contact
    to = (contact.wa_id or contact.bsuid) if contact else ""
    if not to:
        return "no_recipient"
    if message.author == Message.Author.CAMPAIGN and contact and contact.opted_out:
        return REASON_OPTED_OUT
    kind, content = message.type, message.payload
    if kind != "template" and not window_open(conversation=message.conversation, now=now):
        if not message.template_fallback:
            return REASON_WINDOW_CLOSED
        kind, content = "template", message.template_fallback
    return OutboundRequest(
        message_uid=str(message.uid), to=to, type=kind, content=content, reply_to_wamid=message.reply_to_wamid
    )


def _pace(
    message: Message, max_wait: float, conv_settings: ConversationSettings | None = None
) -> float | None:
    """Reserve a slot on the number's bucket and the recipient's; the wait, or None to defer."""
    conv_settings = conv_settings or conversation_settings(message.workspace_id)
    recipient = pacer().reserve(
        f"recipient:{message.channel_id}:{message.contact_id}",
        rate=1.0 / max(conv_settings.recipient_interval_seconds, 0.001),
        burst=conv_settings.recipient_burst,
        max_wait=max_wait,
    )
    if not recipient.reserved:
        return None
    # A little under the number's limit: arrival jitter at Meta must not push a second over it
    # (each 130429 holds the whole number back).
    rate = float(message.channel.send_rate) * settings.OUTBOUND_RATE_HEADROOM
    number = pacer().reserve(f"number:{message.channel_id}", rate=rate, burst=1, max_wait=max_wait)
    if not number.reserved:
        return None
    return max(recipient.wait, number.wait)


def pace_many(
    messages: Sequence[Message],
    max_wait: float,
    settings_for: Callable[[int], ConversationSettings] = conversation_settings,
) -> list[tuple[Message, float]]:
    """`_pace` for several rows of one number in two pacer round trips: (row, wait) for the rows that
    got both slots, in order; the others wait for a later pass (as when `_pace` answers None)."""
    if not messages:
        return []
    requests = []
    for message in messages:
        conv_settings = settings_for(message.workspace_id)
        requests.append(
            (
                f"recipient:{message.channel_id}:{message.contact_id}",
                1.0 / max(conv_settings.recipient_interval_seconds, 0.001),
                conv_settings.recipient_burst,
            )
        )
    recipients = pacer().reserve_each(requests, max_wait=max_wait)
    ready = [
        (message, slot.wait) for message, slot in zip(messages, recipients, strict=True) if slot.reserved
    ]
    channel = messages[0].channel
    numbers = pacer().reserve_many(
        f"number:{channel.pk}",
        rate=float(channel.send_rate) * settings.OUTBOUND_RATE_HEADROOM,
        burst=1,
        max_wait=max_wait,
        count=len(ready),
    )
    # Fewer number slots than rows when the rest are beyond max_wait: those rows wait for a later pass.
    return [(message, max(wait, number)) for (message, wait), number in zip(ready, numbers, strict=False)]


def _earlier_unsent(message: Message) -> bool:
    """An older message of the same conversation still waiting: keep the conversation in order."""
    if message.conversation_id is None:
        return False
    return Message.objects.filter(
        conversation_id=message.conversation_id,
        direction=Message.Direction.OUTBOUND,
        pk__lt=message.pk,
        send_state__in=[S.PENDING, S.RETRY, S.PROCESSING],
    ).exists()


def message_send(*, message_id: int, sleep: Any = None) -> SendOutcome:
    """Send one queued message if it is due; safe to call any number of times for one row."""
    import time

    sleep = sleep or time.sleep
    message = (
        Message.objects.select_related("channel", "contact", "conversation")
        .filter(pk=message_id, direction=Message.Direction.OUTBOUND)
        .first()
    )
    if message is None or message.send_state not in (S.PENDING, S.RETRY):
        return SendOutcome("skipped")
    now = timezone.now()
    if message.next_attempt_at and message.next_attempt_at > now + timedelta(seconds=0.5):
        return SendOutcome("deferred", (message.next_attempt_at - now).total_seconds())
    if _earlier_unsent(message):
        return SendOutcome("deferred", 1.0)
    max_wait = float(settings.OUTBOUND_MAX_INLINE_WAIT)
    wait = _pace(message, max_wait)
    if wait is None:
        return SendOutcome("deferred", max_wait)
    if wait > 0:
        sleep(wait)
    if not message_claim(message):
        return SendOutcome("skipped")
    return message_deliver(message)


def message_claim(message: Message) -> bool:
    """Take the row for one send attempt; from here on it may reach Meta and is never re-sent blindly."""
    return bool(message_claim_many([message]))


def _marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _tables() -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(Message._meta.db_table), quote(SendAttempt._meta.db_table)


def message_claim_many(messages: Sequence[Message]) -> list[Message]:
    """Take rows for one send attempt each (`pending|retry -> processing`) and save each attempt's
    SendAttempt row, `in_flight`, before any of them is handed to the transport. The rows taken.

    PostgreSQL: one statement (a data-modifying CTE, the UPDATE's RETURNING feeding the INSERT).
    SQLite has no DML in CTEs: the same two statements in one transaction.
    """
    if not messages:
        return []
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    ids = [message.pk for message in messages]
    sources = _sources(S.PROCESSING)
    messages_table, attempts_table = _tables()
    claim = (
        f"UPDATE {messages_table} SET send_state = %s, processing_started_at = %s, "  # noqa: S608 - table names from the models, values as parameters
        f"attempts = attempts + 1, next_attempt_at = NULL WHERE id IN ({_marks(ids)}) "
        f"AND send_state IN ({_marks(sources)})"
    )
    claim_params = [S.PROCESSING, now, *ids, *sources]
    # The attempt's number follows the message's last one (the unique (message, number) index answers).
    record = (
        f"INSERT INTO {attempts_table} (workspace_id, message_id, number, started_at, outcome, reason, "  # noqa: S608
        "detail, wamid) SELECT c.workspace_id, c.id, COALESCE((SELECT MAX(a.number) FROM "
        f"{attempts_table} a WHERE a.message_id = c.id), 0) + 1, %s, %s, '', '', '' FROM "
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH c AS ({claim} RETURNING id, workspace_id) {record} c RETURNING message_id",
                [*claim_params, now, A.IN_FLIGHT],
            )
            taken = {row[0] for row in cursor.fetchall()}
        else:
            with transaction.atomic():
                cursor.execute(f"{claim} RETURNING id", claim_params)
                taken = {row[0] for row in cursor.fetchall()}
                if taken:
                    cursor.execute(
                        f"{record} {messages_table} c WHERE c.id IN ({_marks(list(taken))})",
                        [now, A.IN_FLIGHT, *taken],
                    )
    claimed = [message for message in messages if message.pk in taken]
    for message in claimed:
        message.attempts += 1
        message.send_state = S.PROCESSING
    return claimed


def _attempt_settle(
    message_id: int, outcome: str, *, reason: str = "", detail: str = "", error_code: int | None = None
) -> None:
    """Settle the message's in-flight attempt (there is at most one: only a claim makes one)."""
    SendAttempt.objects.filter(message_id=message_id, outcome=A.IN_FLIGHT).update(
        outcome=outcome,
        finished_at=timezone.now(),
        reason=reason,
        detail=detail[: SendAttempt.DETAIL_LIMIT],
        error_code=error_code,
    )


def send_attempts_reconcile(*, messages: QuerySet[Message], wamid: str) -> int:
    """A status webhook showed that these rows' send reached WhatsApp (its answer was lost, or has not
    come yet): their in-flight or unknown attempt was accepted."""
    return SendAttempt.objects.filter(message__in=messages, outcome__in=[A.IN_FLIGHT, A.UNKNOWN]).update(
        outcome=A.ACCEPTED, wamid=wamid, finished_at=Coalesce(F("finished_at"), Value(timezone.now()))
    )


def sent_record_many(sent: Sequence[tuple[Message, str]]) -> None:
    """Record sends WhatsApp accepted, each (message, its wamid): `processing -> sent` and the attempt
    accepted, for all of them in one statement on PostgreSQL (raw SQL: the ORM spent more CPU
    compiling this UPDATE's CASEs than the send itself), then one live event each, in one INSERT.

    A status webhook may already have reconciled a row (Meta's status faster than the send's answer):
    then only an empty wamid and a `queued` status are filled in, and the attempt is settled already.
    Every CASE reads the row as it was before the UPDATE.
    """
    if not sent:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    messages_table, attempts_table = _tables()
    values = (
        "WITH v (mid, new_wamid) AS (VALUES "
        + ", ".join(["(CAST(%s AS bigint), CAST(%s AS text))"] * len(sent))
        + ")"
    )
    values_params = [value for message, wamid in sent for value in (message.pk, wamid)]
    messages_update = (
        f"UPDATE {messages_table} SET "  # noqa: S608 - table names from the models, values as parameters
        "wamid = CASE WHEN send_state = %s OR wamid = '' THEN v.new_wamid ELSE wamid END, "
        "sent_at = CASE WHEN send_state = %s THEN %s ELSE sent_at END, "
        "status_at = CASE WHEN status = %s THEN %s ELSE status_at END, "
        "status = CASE WHEN status = %s THEN %s ELSE status END, "
        "send_state = CASE WHEN send_state = %s THEN %s ELSE send_state END "
        f"FROM v WHERE {messages_table}.id = v.mid"
    )
    messages_params = [
        S.PROCESSING,
        *(S.PROCESSING, now),
        *(Message.Status.QUEUED, now),
        *(Message.Status.QUEUED, Message.Status.ACCEPTED),
        *(S.PROCESSING, S.SENT),
    ]
    attempts_update = (
        f"UPDATE {attempts_table} SET outcome = %s, finished_at = %s, wamid = v.new_wamid "  # noqa: S608
        f"FROM v WHERE {attempts_table}.message_id = v.mid AND {attempts_table}.outcome = %s"
    )
    attempts_params = [A.ACCEPTED, now, A.IN_FLIGHT]
    # Two statements, messages first: a status webhook reconciling the same rows locks the message,
    # then its attempt. One statement with the messages' UPDATE in a WITH (as this was) leaves the order
    # to PostgreSQL, which could lock the attempts first: the two-host test saw deadlocks.
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute(f"{values} {messages_update}", [*values_params, *messages_params])
        cursor.execute(f"{values} {attempts_update}", [*values_params, *attempts_params])
    # After the rows' own commit, not in one transaction with them: the event never tells of a change
    # that did not happen, and a crash between the two only costs the screen one wake-up.
    live_publish_many(
        [
            LiveEvent(
                workspace_id=message.workspace_id,
                kind="status",
                conversation_id=message.conversation_id,
                payload={"message_id": message.pk},
            )
            for message, _ in sent
        ]
    )


def message_deliver(
    message: Message,
    *,
    gate: AbstractContextManager[object] | None = None,
    record: Callable[[Message, str], None] | None = None,
) -> SendOutcome:
    """Hand a claimed row to its transport and record the outcome.

    `gate` wraps the transport call alone (the sender's send window: it times the call's start and
    answer). `record`, when given, takes an accepted send (the message and its wamid) to be written
    later with others (`sent_record_many`); failures are always recorded here, at once.
    """
    request = _request_for(message, timezone.now())
    if isinstance(request, str):
        _fail(message, reason=request, detail=f"not sent: {request}")
        return SendOutcome("failed")
    try:
        with gate or nullcontext():
            result = transport_for(message.channel).send(message.channel, request)
    except SendError as exc:
        return _handle_error(message, exc)
    if record is not None:
        record(message, result.wamids[0])
    else:
        sent_record_many([(message, result.wamids[0])])
    return SendOutcome("sent")


def _fail(message: Message, *, reason: str, detail: str, meta_code: int | None = None) -> None:
    with transaction.atomic():
        failed = _transition(
            message.pk,
            S.FAILED,
            sources=[S.PROCESSING],
            error_code=meta_code,
            status=Message.Status.FAILED,
            status_at=timezone.now(),
        )
        _attempt_settle(message.pk, A.FAILED, reason=reason, detail=detail, error_code=meta_code)
    if failed:
        metrics.OUTBOUND_FAILED.inc(reason)
    live_publish(
        workspace_id=message.workspace_id,
        kind="status",
        conversation_id=message.conversation_id,
        payload={"message_id": message.pk},
    )


def _handle_error(message: Message, exc: SendError) -> SendOutcome:
    logger.warning("send of message %s failed: %s (%s)", message.pk, exc.reason, exc.meta_code)
    if exc.outcome_unknown:
        # It may have reached WhatsApp: stay `processing` for reconciliation, never resend blindly.
        _attempt_settle(
            message.pk,
            A.UNKNOWN,
            reason=exc.reason,
            detail=f"outcome unknown: {exc.message}",
            error_code=exc.meta_code,
        )
        return SendOutcome("unknown")
    retry_in: float | None = None
    if exc.reason == REASON_RATE_LIMITED:
        # Meta's window for the number is full: no send for RATE_LIMIT_HOLD (refusals of one bunch
        # hold it once, not once each), then this row goes again, its attempt not counted: the
        # refusal is about the number's pace, not the message (its SendAttempt row records it).
        pacer().hold(f"number:{message.channel_id}", seconds=RATE_LIMIT_HOLD)
        Message.objects.filter(pk=message.pk).update(attempts=F("attempts") - 1)
        message.attempts -= 1
        retry_in = RATE_LIMIT_HOLD
    elif exc.reason == REASON_RECIPIENT_RATE_LIMITED:
        pacer().slow_down(f"recipient:{message.channel_id}:{message.contact_id}", seconds=6.0)
    elif exc.reason == REASON_OPTED_OUT and message.contact is not None:
        contact_set_opt_out(contact=message.contact, opted_out=True, source="meta_131050")
    elif exc.reason == REASON_CIRCUIT_OPEN:
        # Nothing left this machine: an outage of the API must not use up the message's attempts
        # (its SendAttempt row still records the try).
        Message.objects.filter(pk=message.pk).update(attempts=F("attempts") - 1)
        message.attempts -= 1
    if exc.permanent or message.attempts >= message.max_attempts:
        _fail(message, reason=exc.reason, detail=exc.message, meta_code=exc.meta_code)
        return SendOutcome("failed")
    # Meta's Retry-After is capped like our own backoff: a huge one must not outlast the broker's
    # visibility timeout or park the message for days.
    if exc.retry_after:
        delay = min(float(exc.retry_after), BACKOFF_MAX)
    else:
        delay = retry_in if retry_in is not None else backoff_seconds(message.attempts)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, send_state=S.PROCESSING).update(
            send_state=S.FAILED, error_code=exc.meta_code
        )
        _transition(
            message.pk, S.RETRY, sources=[S.FAILED], next_attempt_at=timezone.now() + timedelta(seconds=delay)
        )
        _attempt_settle(message.pk, A.RETRY, reason=exc.reason, detail=exc.message, error_code=exc.meta_code)
        live_publish(
            workspace_id=message.workspace_id,
            kind="status",
            conversation_id=message.conversation_id,
            payload={"message_id": message.pk},
        )
    return SendOutcome("retry", delay)


def stuck_processing_settle(*, older_than: timedelta) -> int:
    """Rows left `processing` with no answer and no status webhook: fail them, and settle their
    attempts as `unknown_outcome`.

    They may or may not have reached the customer, so they are not re-sent automatically;
    staff see them in the queue and can retry by hand.
    """
    now = timezone.now()
    messages_table, _ = _tables()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {messages_table} SET send_state = %s, status = %s "  # noqa: S608 - table name from the model
            "WHERE send_state = %s AND processing_started_at < %s RETURNING id",
            [
                S.FAILED,
                Message.Status.FAILED,
                S.PROCESSING,
                connection.ops.adapt_datetimefield_value(now - older_than),
            ],
        )
        settled = [row[0] for row in cursor.fetchall()]
        if settled:
            SendAttempt.objects.filter(message_id__in=settled, outcome__in=[A.IN_FLIGHT, A.UNKNOWN]).update(
                outcome=A.UNKNOWN,
                reason=REASON_UNKNOWN_OUTCOME,
                finished_at=Coalesce(F("finished_at"), Value(now)),
                # The transport's own words when it had any ("outcome unknown: timed out ...").
                detail=Case(
                    When(detail="", then=Value(STUCK_DETAIL)),
                    default=F("detail"),
                ),
            )
    return len(settled)


def sender_wake(channel_id: int) -> None:
    """Make sure the number has a live sender (called after commit, once per enqueue, not per row).

    A sender that finds its queue empty releases its lease and then looks again, so a row committed
    before this check is either seen by that sender or finds the lease gone and starts another.
    """
    from apps.conversations.services.sender import lease_live
    from apps.conversations.tasks import number_send

    if not lease_live(channel_id):
        number_send.delay(channel_id)
