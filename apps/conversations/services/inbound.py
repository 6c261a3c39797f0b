"""Processing one stored customer message: who wrote, in which conversation, and what follows."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import RedisError

from apps.assistant.language import detect_language, folded_words
from apps.conversations import metrics
from apps.conversations.models import (
    DEFAULT_HANDOFF_WORDS,
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    INBOUND_SET_ASIDE,
    Contact,
    Conversation,
    ConversationSettings,
    Message,
)
from apps.conversations.services import search_index
from apps.conversations.services.alerting import alerts_check
from apps.conversations.services.ingest import contact_find, contact_number_change, contact_upsert
from apps.conversations.services.optout import contact_set_opt_out
from apps.conversations.services.outbound import conversation_settings, message_enqueue
from apps.conversations.services.replies import reply_request
from apps.conversations.services.status import LIVE, Move, conversation_live_for, conversation_move
from apps.live.services import live_publish
from chatbot import log_context
from chatbot.exceptions import Conflict

logger = logging.getLogger(__name__)

TEXTS = {
    "opt_out": {
        "es": "Listo, no te enviaremos más mensajes promocionales. Escribe ALTA si quieres volver a recibirlos.",
        "en": "Done: you will not receive promotional messages any more. Reply START to receive them again.",
    },
    "opt_in": {
        "es": "¡Bienvenido de nuevo! Volverás a recibir nuestras novedades. Escribe BAJA para dejar de recibirlas.",
        "en": "Welcome back! You will receive our news again. Reply STOP to stop them.",
    },
    "handoff": {
        "es": "Gracias, una persona de nuestro equipo te responderá en breve.",
        "en": "Thanks, a person from our team will reply to you shortly.",
    },
    "received": {
        "es": "Gracias, lo hemos recibido. Una persona de nuestro equipo lo revisará y te responderá en breve.",
        "en": "Thanks, we have received it. A person from our team will review it and reply to you shortly.",
    },
}
# Messages the business must act on (an order from the catalogue, a completed form): a person takes them.
TO_A_PERSON_TYPES = frozenset({"order"})
TO_A_PERSON_INTERACTIVE = frozenset({"nfm_reply"})


def _words(configured: list[str], default: list[str]) -> set[str]:
    return {folded_words(word) for word in (configured or default)}


def _system_reply(
    conversation: Conversation, text_key: str, language: str, source: Message, rules: ConversationSettings
) -> None:
    custom = {"opt_out": rules.opt_out_confirmation, "opt_in": rules.opt_in_confirmation}.get(text_key) or {}
    body = custom.get(language) or TEXTS[text_key].get(language) or TEXTS[text_key]["es"]
    message_enqueue(
        conversation=conversation,
        author=Message.Author.SYSTEM,
        body=body,
        dedupe_key=f"{text_key}:{source.pk}",
    )


EARLIER_LIMIT = 50
# Failures that say nothing about the message itself: an outage of the database, the cache or the
# network. They never count towards setting a message aside.
TRANSIENT = (OperationalError, InterfaceError, RedisError, OSError)
SET_ASIDE = INBOUND_SET_ASIDE


def inbound_message_process(*, message_id: int) -> str:
    """Process one stored inbound message exactly once; returns what happened.

    Each message is processed in its own transaction, and the claim (setting `processed_at`)
    commits together with everything else, so a crash half-way leaves the message unprocessed
    for the retry or the sweeper.

    Earlier messages of the same sender still unprocessed (their task lost with the broker) go
    first, in order: the customer's turn then holds everything they wrote, and the reply to it
    answers all of it. Claims are taken in ascending id order, so concurrent workers cannot deadlock.
    """
    sender = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.INBOUND, processed_at__isnull=True)
        .values("channel_id", "from_wa_id", "from_bsuid", "attempts")
        .first()
    )
    if sender is None:
        return "skipped"
    same_sender = (
        Q(from_wa_id=sender["from_wa_id"]) if sender["from_wa_id"] else Q(from_bsuid=sender["from_bsuid"])
    )
    earlier = Message.objects.filter(
        same_sender,
        channel_id=sender["channel_id"],
        direction=Message.Direction.INBOUND,
        processed_at__isnull=True,
        pk__lt=message_id,
    ).order_by("pk")
    for earlier_id, attempts in earlier.values_list("pk", "attempts")[:EARLIER_LIMIT]:
        _attempt(earlier_id, attempts)
    return _attempt(message_id, sender["attempts"])


def _attempt(message_id: int, attempts_before: int) -> str:
    """One try at one message. A message that keeps failing (or keeps killing its worker) is set
    aside after INBOUND_MAX_ATTEMPTS, so it cannot block its sender's later messages for ever."""
    counted = Message.objects.filter(pk=message_id, processed_at__isnull=True).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        return "skipped"
    attempt = attempts_before + 1
    limit = settings.INBOUND_MAX_ATTEMPTS
    if attempt > limit:  # the earlier tries ended without a word: their worker died
        return _set_aside(message_id, attempt - 1, "every attempt ended without an answer (worker lost)")
    try:
        with transaction.atomic():
            return _process_one(message_id)
    except TRANSIENT:
        try:  # an outage is not the message's fault
            Message.objects.filter(pk=message_id).update(attempts=F("attempts") - 1)
        except DatabaseError:
            pass
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= limit:
            return _set_aside(message_id, attempt, error)
        Message.objects.filter(pk=message_id).update(last_error=error)
        raise


def _set_aside(message_id: int, attempts: int, error: str) -> str:
    Message.objects.filter(pk=message_id, processed_at__isnull=True).update(
        processed_at=timezone.now(), failure_reason=SET_ASIDE, last_error=error
    )
    metrics.INBOUND_SET_ASIDE.inc()
    try:
        with transaction.atomic():
            _show_to_people(message_id)
    except Exception:  # whatever broke the processing may break this too: the message stays stored
        logger.warning(
            "set-aside message %s could not be shown in its conversation", message_id, exc_info=True
        )
    # The error's class only: its text may quote the customer.
    logger.error(
        "inbound message %s set aside after %s attempts (%s); reprocess it from the admin",
        message_id,
        attempts,
        error.split(":", 1)[0],
    )
    return "set_aside"


def _show_to_people(message_id: int) -> None:
    """Put a set-aside message in its sender's live conversation, if there is one, and hand that
    conversation to a person, so staff see what the bot could not handle. Reads only what exists:
    a new customer's first message has no conversation yet and stays in the admin only."""
    message = Message.objects.get(pk=message_id)
    contact = contact_find(
        workspace_id=message.workspace_id, wa_id=message.from_wa_id, bsuid=message.from_bsuid
    )
    if contact is None:
        return
    conversation = Conversation.objects.filter(
        channel_id=message.channel_id, contact=contact, status__in=LIVE
    ).first()
    if conversation is None:
        return
    Message.objects.filter(pk=message_id).update(conversation=conversation, contact=contact)
    search_index.message_index_late(message_id=message_id)  # processed_at was set before: it may be past
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=timezone.now(), unread_count=F("unread_count") + 1
    )
    conversation_move(conversation=conversation, move=Move.SET_ASIDE)
    live_publish(
        workspace_id=message.workspace_id,
        kind="message",
        conversation_id=conversation.pk,
        payload={"message_id": message_id},
    )


def inbound_reprocess(*, message: Message) -> None:
    """Give a set-aside message a fresh set of attempts (after the fault behind it was fixed)."""
    from apps.conversations.tasks import inbound_message_process as task

    reset = Message.objects.filter(pk=message.pk, failure_reason=SET_ASIDE).update(
        processed_at=None, failure_reason="", attempts=0
    )
    if not reset:
        raise Conflict("Only a message set aside after failing can be processed again.", code="not_set_aside")
    transaction.on_commit(lambda: task.delay(message.pk))


def _process_one(message_id: int) -> str:
    now = timezone.now()
    claimed = Message.objects.filter(
        pk=message_id, direction=Message.Direction.INBOUND, processed_at__isnull=True
    ).update(processed_at=now)
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("channel").get(pk=message_id)
    log_context.bind(workspace_id=message.workspace_id, channel_id=message.channel_id, message_id=message.pk)
    payload = message.payload if isinstance(message.payload, dict) else {}
    if payload.get("group_id") and not settings.INBOUND_GROUP_REPLIES:
        return _group_store(message)
    if message.type == "system":
        return _system_apply(message, payload)
    contact = contact_upsert(
        workspace_id=message.workspace_id,
        wa_id=message.from_wa_id,
        bsuid=message.from_bsuid,
        profile_name=message.from_name,
    )
    conversation = conversation_live_for(
        channel_id=message.channel_id, workspace_id=message.workspace_id, contact=contact
    )
    Message.objects.filter(pk=message.pk).update(conversation=conversation, contact=contact)
    if message.created_at < now - search_index.STRAGGLER:  # the search's indexer went on without it
        search_index.message_index_late(message_id=message.pk)
    log_context.bind(conversation_id=conversation.pk)
    message.conversation, message.contact = conversation, contact
    sent_at = message.sent_by_customer_at or now
    if not conversation.last_inbound_at or sent_at > conversation.last_inbound_at:
        conversation.last_inbound_at = sent_at
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=conversation.last_inbound_at, last_message_at=now, unread_count=F("unread_count") + 1
    )
    # The row is locked (conversation_live_for) until commit: the copy in hand stays exact without a re-read.
    conversation.last_message_at, conversation.unread_count = now, conversation.unread_count + 1
    live_publish(
        workspace_id=message.workspace_id,
        kind="message",
        conversation_id=conversation.pk,
        payload={"message_id": message.pk},
    )

    if message.type == "reaction":
        # Shown on the message it reacts to (reply_to_wamid), never answered nor merged into a question.
        _handled(message, "reaction")
        _ring_reacted_conversation(message, conversation)
        return "reaction"
    rules = conversation_settings(message.workspace_id)
    text = folded_words(message.body) if message.type in ("text", "button", "interactive") else ""
    wants_person = bool(text and set(text.split()) & _words(rules.handoff_words, DEFAULT_HANDOFF_WORDS))
    if message.body:  # text, caption, button or list title: whatever the customer wrote
        alerts_check(
            conversation=conversation,
            message=message,
            text=message.body,
            signals=frozenset({"asked_for_person"}) if wants_person else frozenset(),
        )
    language = detect_language(message.body) or contact.language or _recent_language(conversation) or "es"
    opt_out_words = _words(rules.opt_out_words, DEFAULT_OPT_OUT_WORDS)
    # A template's quick-reply button is the business's own wording ("Stop promotions", "Darme de
    # baja"): an opt-out word anywhere in it counts. A customer's free text must be the word alone.
    tapped_opt_out = message.type == "button" and bool(set(text.split()) & opt_out_words)
    # "Cancelar" right after a booking reminder cancels the booking, not the promotions.
    about_booking = text in ("cancelar", "cancel") and _reminded(contact, now)
    if text and (text in opt_out_words or tapped_opt_out) and not about_booking:
        _handled(message, "keyword")
        source = "button" if message.type == "button" else "keyword"
        if contact_set_opt_out(contact=contact, opted_out=True, source=source):
            _system_reply(conversation, "opt_out", language, message, rules)
        return "opted_out"
    if text and text in _words(rules.opt_in_words, DEFAULT_OPT_IN_WORDS):
        _handled(message, "keyword")
        if contact_set_opt_out(contact=contact, opted_out=False, source="keyword"):
            _system_reply(conversation, "opt_in", language, message, rules)
        return "opted_in"
    if conversation.status == Conversation.Status.HUMAN and rules.takeover_idle_minutes:
        idle_since = now - timedelta(minutes=rules.takeover_idle_minutes)
        conversation_move(
            conversation=conversation,
            move=Move.IDLE_HANDBACK,
            where=Q(human_activity_at__lte=idle_since)
            | Q(human_activity_at__isnull=True, created_at__lte=idle_since),
            assignee=None,
        )
    interactive = payload.get("interactive")
    interactive_type = interactive.get("type") if isinstance(interactive, dict) else None
    if message.type in TO_A_PERSON_TYPES or interactive_type in TO_A_PERSON_INTERACTIVE:
        _handled(message, "to_person")
        if conversation.status == Conversation.Status.OPEN:
            conversation_move(conversation=conversation, move=Move.CUSTOMER_HANDOFF)
        if conversation.status != Conversation.Status.HUMAN:
            _system_reply(conversation, "received", language, message, rules)
        return "handoff"
    if conversation.status == Conversation.Status.HUMAN:
        return "human"  # the bot stays silent while a person has the conversation
    if wants_person and conversation.status == Conversation.Status.OPEN:
        _handled(message, "keyword")
        conversation_move(conversation=conversation, move=Move.CUSTOMER_HANDOFF)
        _system_reply(conversation, "handoff", language, message, rules)
        return "handoff"
    if wants_person:
        _handled(message, "keyword")
        return "human"  # asked again while waiting: the person is already coming
    # Waiting for a person (pending_human), the bot still answers what it is sure of (replies.py).
    return "bot" if reply_request(conversation=conversation, message=message) else "assistant_off"


def _reminded(contact: Contact, now: datetime) -> bool:
    from apps.calendar.selectors import booking_reminded

    return booking_reminded(workspace_id=contact.workspace_id, contact_id=contact.pk, now=now) is not None


def _handled(message: Message, how: str) -> None:
    Message.objects.filter(pk=message.pk).update(handled_as=how)
    message.handled_as = how


def _ring_reacted_conversation(reaction: Message, conversation: Conversation) -> None:
    """A reaction to a message of another conversation (an earlier, closed one) shows on that
    message there too (selectors.with_reactions): that conversation's open pages are told as well."""
    if not reaction.reply_to_wamid:
        return
    target = (
        Message.objects.filter(channel_id=reaction.channel_id, wamid=reaction.reply_to_wamid)
        .values_list("conversation_id", flat=True)
        .first()
    )
    if target is not None and target != conversation.pk:
        live_publish(
            workspace_id=reaction.workspace_id,
            kind="message",
            conversation_id=target,
            payload={"message_id": reaction.pk},
        )


def _recent_language(conversation: Conversation) -> str:
    """The language of the customer's latest messages in this conversation that tell one."""
    bodies = (
        Message.objects.filter(conversation=conversation, direction=Message.Direction.INBOUND)
        .exclude(body="")
        .order_by("-pk")
        .values_list("body", flat=True)[:5]
    )
    return next((found for body in bodies if (found := detect_language(body))), "")


def _group_store(message: Message) -> str:
    """A message written in a WhatsApp group: kept with its sender as a group message, outside the
    sender's private conversation, and not answered (INBOUND_GROUP_REPLIES answers it privately)."""
    contact = contact_upsert(
        workspace_id=message.workspace_id,
        wa_id=message.from_wa_id,
        bsuid=message.from_bsuid,
        profile_name=message.from_name,
    )
    Message.objects.filter(pk=message.pk).update(contact=contact, handled_as="group")
    logger.info("group message %s stored, not answered (INBOUND_GROUP_REPLIES is off)", message.pk)
    return "group"


def _system_apply(message: Message, payload: dict[str, Any]) -> str:
    """Meta's system messages: a number change moves the contact (and its consent) to the new number;
    others (an identity change) are recorded only. Shown in the sender's live conversation, if any,
    and never answered."""
    system = payload.get("system")
    system = system if isinstance(system, dict) else {}
    outcome = "system"
    contact = None
    if system.get("type") == "user_changed_number":
        new_wa_id = str(system.get("wa_id") or system.get("new_wa_id") or "")[:32]
        contact = contact_number_change(
            workspace_id=message.workspace_id, old_wa_id=message.from_wa_id, new_wa_id=new_wa_id
        )
        outcome = "number_changed" if contact is not None else "system"
    else:
        logger.info("system message %s (%s) recorded", message.pk, str(system.get("type"))[:64])
    contact = contact or contact_find(
        workspace_id=message.workspace_id, wa_id=message.from_wa_id, bsuid=message.from_bsuid
    )
    conversation = (
        Conversation.objects.filter(channel_id=message.channel_id, contact=contact, status__in=LIVE).first()
        if contact is not None
        else None
    )
    Message.objects.filter(pk=message.pk).update(
        contact=contact, conversation=conversation, handled_as="system"
    )
    if conversation is not None:
        live_publish(
            workspace_id=message.workspace_id,
            kind="message",
            conversation_id=conversation.pk,
            payload={"message_id": message.pk},
        )
    return outcome
