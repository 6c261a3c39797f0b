"""Storing what the WhatsApp edge received: messages exactly once, statuses forward only."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.conversations import metrics
from apps.conversations.events import InboundMessage, PreferenceUpdate, StatusUpdate
from apps.conversations.models import Contact, Message
from apps.conversations.transport import ChannelRef
from apps.live.services import live_publish
from chatbot import compiled_insert

logger = logging.getLogger(__name__)

# Delivery statuses only move forward; `failed` may replace anything short of `read`.
STATUS_RANK: dict[str, int] = {
    Message.Status.RECEIVED: 0,
    Message.Status.QUEUED: 0,
    Message.Status.ACCEPTED: 1,
    Message.Status.SENT: 2,
    Message.Status.DELIVERED: 3,
    Message.Status.READ: 4,
}
# A message delivered again that is stored but still unprocessed this long after it was stored lost its
# task (its process died between the commit and the publish): the re-delivery queues it again, sooner
# than the sweeper would (60 s after, every 30 s). Younger ones have a task on its way.
REDELIVERY_GRACE = timedelta(seconds=10)
# Message types that change an earlier message rather than being one.
AMENDMENTS = frozenset({"edit", "revoke"})
META_STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read", "failed": "failed"}


def inbound_store(*, channel: ChannelRef, messages: list[InboundMessage]) -> list[int]:
    """Insert each message once; return the ids of the new rows and enqueue them after commit.

    The unique (channel, wamid) constraint decides what is new, so two deliveries racing
    with the same message store it once. Runs inside the caller's transaction, or alone in autocommit
    (it is one statement).
    """
    from apps.conversations.tasks import inbound_enqueue

    amendments = [item for item in messages if item.type in AMENDMENTS]
    if amendments:
        messages = [item for item in messages if item.type not in AMENDMENTS]
        for item in amendments:
            message_amend(channel=channel, item=item)
    rows = [
        Message(
            workspace_id=channel.workspace_id,
            channel_id=channel.pk,
            direction=Message.Direction.INBOUND,
            author=Message.Author.CUSTOMER,
            type=item.type,
            body=item.body,
            payload=item.raw,
            wamid=item.wamid,
            reply_to_wamid=item.reply_to_wamid,
            from_wa_id=item.from_wa_id,
            from_bsuid=item.from_bsuid,
            from_name=item.from_name[:255],
            sent_by_customer_at=item.timestamp,
            status=Message.Status.RECEIVED,
        )
        for item in messages
    ]
    if not rows:
        return []
    created = _insert_new(rows)
    stalled: list[int] = []
    if len(created) < len(rows):
        logger.info(
            "%d duplicate inbound message(s) on channel %s ignored", len(rows) - len(created), channel.pk
        )
        stalled = _stalled(channel=channel, wamids=[row.wamid for row in rows], created=created)
    if queued := created + stalled:
        # robust: the rows are committed; an unreachable broker must not turn that into an error
        # answer (the sweeper enqueues what never reached the broker). One callback per delivery, and
        # concurrent deliveries of this process share one broker message. A duplicate processing task
        # does nothing: processing claims the row (processed_at).
        transaction.on_commit(lambda: inbound_enqueue(queued), robust=True)
    return created


def _stalled(*, channel: ChannelRef, wamids: list[str], created: list[int]) -> list[int]:
    """The already stored messages of a delivery whose processing never started (REDELIVERY_GRACE)."""
    found = list(
        Message.objects.filter(
            channel_id=channel.pk,
            direction=Message.Direction.INBOUND,
            wamid__in=wamids,
            processed_at__isnull=True,
            created_at__lt=timezone.now() - REDELIVERY_GRACE,
        )
        .exclude(pk__in=created)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if found:
        logger.info(
            "re-delivered message(s) %s on channel %s never processed: queued again", found, channel.pk
        )
    return found


def message_amend(*, channel: ChannelRef, item: InboundMessage) -> bool:
    """An `edit` or `revoke` of an earlier customer message changes that message instead of adding a
    row: an edit replaces its text, a revoke (the customer deleted it for everyone) empties it. Meta's
    item is kept under the original's payload (`edit` / `revoke`). False, logged, when the original
    is not stored here (it predates the channel): there is nothing to change."""
    original = (
        Message.objects.filter(
            channel_id=channel.pk, wamid=item.reply_to_wamid, direction=Message.Direction.INBOUND
        )
        .only("pk", "payload", "conversation_id")
        .first()
        if item.reply_to_wamid
        else None
    )
    if original is None:
        logger.warning(
            "%s %s of message %r not stored here: ignored", item.type, item.wamid, item.reply_to_wamid
        )
        return False
    payload = original.payload if isinstance(original.payload, dict) else {}
    body = item.body if item.type == "edit" else ""
    Message.objects.filter(pk=original.pk).update(body=body, payload={**payload, item.type: item.raw})
    if original.conversation_id:
        live_publish(
            workspace_id=channel.workspace_id,
            kind="message",
            conversation_id=original.conversation_id,
            payload={"message_id": original.pk},
        )
    return True


def _insert_new(rows: list[Message]) -> list[int]:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING id`: one statement, in which the unique (channel,
    wamid) skips a message already stored, also one a concurrent delivery is inserting right now, and
    which returns the ids of the rows that went in (bulk_create cannot both ignore and return). The
    common one-message delivery reuses the statement compiled once per process."""
    return compiled_insert.insert(rows, ignore_conflicts=True)


def status_apply(*, channel: ChannelRef, update: StatusUpdate) -> bool:
    """Move one outbound message's delivery status forward; True when something changed."""
    new = META_STATUS.get(update.status)
    if new is None:
        logger.info("unknown status %r for %s ignored", update.status, update.wamid)
        return False
    match = Q(wamid=update.wamid)
    if update.callback_data:
        match |= Q(uid=update.callback_data) if _is_uuid(update.callback_data) else Q()
    rows = Message.objects.filter(match, channel_id=channel.pk, direction=Message.Direction.OUTBOUND)
    if new == Message.Status.FAILED:
        allowed = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[Message.Status.READ]]
        changes: dict[str, Any] = {
            "status": new,
            "status_at": update.timestamp,
            "error_code": update.error_code,
            "error_title": update.error_title[:255],
        }
    else:
        allowed = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[new]]
        changes = {"status": new, "status_at": update.timestamp}
    changed = rows.filter(status__in=allowed).update(**changes)
    if changed and new == Message.Status.FAILED:
        metrics.OUTBOUND_FAILED.inc("status_webhook", amount=changed)
    # A status for a send whose answer we never got: the message did reach Meta. Record the
    # wamid and settle the queue row instead of ever sending it again.
    reconciled = rows.filter(send_state=Message.SendState.PROCESSING).update(
        wamid=update.wamid, send_state=Message.SendState.SENT, sent_at=timezone.now()
    )
    if reconciled:
        logger.info("send %s reconciled from a status webhook", update.callback_data or update.wamid)
        # Its conversation's next message was waiting behind it: the number's sender may have gone idle.
        from apps.conversations.services.outbound import send_attempts_reconcile, sender_wake

        send_attempts_reconcile(messages=rows, wamid=update.wamid)
        channel_id = channel.pk
        transaction.on_commit(lambda: sender_wake(channel_id), robust=True)
    if changed or reconciled:
        live_publish(
            workspace_id=channel.workspace_id,
            kind="status",
            conversation_id=rows.values_list("conversation_id", flat=True).first(),
            payload={"status": new},
        )
    return bool(changed or reconciled)


def statuses_apply(*, channel: ChannelRef, updates: list[StatusUpdate]) -> int:
    return sum(status_apply(channel=channel, update=update) for update in updates)


def preferences_apply(*, channel: ChannelRef, updates: list[PreferenceUpdate]) -> int:
    """user_preferences webhooks: a customer stopped or resumed marketing messages."""
    from apps.conversations.services.optout import contact_set_opt_out

    changed = 0
    for update in updates:
        contact = contact_find(workspace_id=channel.workspace_id, wa_id=update.wa_id, bsuid=update.bsuid)
        if contact is None:
            contact = contact_upsert(
                workspace_id=channel.workspace_id, wa_id=update.wa_id, bsuid=update.bsuid
            )
        changed += contact_set_opt_out(
            contact=contact, opted_out=update.value == "stop", source="user_preferences"
        )
    return changed


def contact_find(*, workspace_id: int, wa_id: str = "", bsuid: str = "") -> Contact | None:
    match = Q()
    if wa_id:
        match |= Q(wa_id=wa_id)
    if bsuid:
        match |= Q(bsuid=bsuid)
    if not match:
        return None
    return Contact.objects.filter(match, workspace_id=workspace_id).order_by("pk").first()


def contact_upsert(*, workspace_id: int, wa_id: str = "", bsuid: str = "", profile_name: str = "") -> Contact:
    """The contact for these ids, created when new; fills in whichever id it lacked.

    Identity (docs/decisions.md): the BSUID is the person, the phone number is where replies go. A
    message from a number with the BSUID of a contact that had another number means that person
    changed number: the contact moves to the number that wrote. When that number already belongs
    to another contact, the message is filed under the number's contact (replies go to the number
    that wrote, never elsewhere) and the clash is logged for staff.
    """
    contact = _contact_resolve(workspace_id=workspace_id, wa_id=wa_id, bsuid=bsuid)
    if contact is None:
        try:
            with transaction.atomic():
                return Contact.objects.create(
                    workspace_id=workspace_id, wa_id=wa_id, bsuid=bsuid, profile_name=profile_name[:255]
                )
        except IntegrityError:  # created concurrently by another worker
            contact = _contact_resolve(workspace_id=workspace_id, wa_id=wa_id, bsuid=bsuid)
            assert contact is not None  # noqa: S101
    updates = {}
    if wa_id and contact.wa_id != wa_id:
        updates["wa_id"] = wa_id
    if (
        bsuid
        and not contact.bsuid
        and not Contact.objects.filter(workspace_id=workspace_id, bsuid=bsuid).exists()
    ):
        updates["bsuid"] = bsuid
    if profile_name and contact.profile_name != profile_name:
        updates["profile_name"] = profile_name[:255]
    if updates:
        if contact.wa_id and "wa_id" in updates:
            logger.info("contact %s wrote from a new number: replies go to it now", contact.pk)
        Contact.objects.filter(pk=contact.pk).update(**updates)
        for key, value in updates.items():
            setattr(contact, key, value)
    return contact


def _contact_resolve(*, workspace_id: int, wa_id: str, bsuid: str) -> Contact | None:
    """The contact a sender is filed under: the one holding the number that wrote, else the BSUID's."""
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    by_number = contacts.filter(wa_id=wa_id).first() if wa_id else None
    by_bsuid = contacts.filter(bsuid=bsuid).first() if bsuid else None
    if by_number is not None and by_bsuid is not None and by_number.pk != by_bsuid.pk:
        logger.warning(
            "number of contact %s writes with the BSUID of contact %s: filed under the number's",
            by_number.pk,
            by_bsuid.pk,
        )
    return by_number or by_bsuid


def contact_number_change(*, workspace_id: int, old_wa_id: str, new_wa_id: str) -> Contact | None:
    """Meta's `user_changed_number`: the contact (and with it its consent and conversations) moves to
    the new number. None, logged, when no contact has the old number or another has the new one
    (two contacts are never merged automatically: staff decide)."""
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    contact = contacts.filter(wa_id=old_wa_id).first() if old_wa_id else None
    if contact is None or not new_wa_id or new_wa_id == old_wa_id:
        logger.info("number change to %s: no contact with the old number", new_wa_id[-4:])
        return None
    if contacts.filter(wa_id=new_wa_id).exists():
        logger.warning("number change of contact %s: the new number belongs to another contact", contact.pk)
        return None
    contacts.filter(pk=contact.pk).update(wa_id=new_wa_id)
    contact.wa_id = new_wa_id
    return contact


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
