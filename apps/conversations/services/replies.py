"""Asking the assistant for the bot's reply to a customer turn, and queueing it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from apps.assistant.admission import Deferred
from apps.assistant.language import detect_language
from apps.conversations import metrics
from apps.conversations.models import Conversation, Message
from apps.conversations.services.alerting import alerts_check
from apps.conversations.services.outbound import message_enqueue
from apps.conversations.services.status import Move, conversation_move
from chatbot import log_context, ratelimit

logger = logging.getLogger(__name__)

HISTORY_TURNS = 20  # turns handed to the assistant; it trims further to its token budget
# Handled messages that are no turn of the conversation's text (inbound._process_one).
NOT_IN_HISTORY = ("reaction", "group", "system")
REPLY_PIECE = 1000  # long answers go out as several messages, cut at sentence boundaries
# Failures that say nothing about the turn: an outage of the database, the cache or the network.
# The task retries them, and they never count towards giving the reply up.
_TRANSIENT = (OperationalError, InterfaceError, RedisError, OSError)
# Conversations the bot replies in: its own, and one waiting for a person (then only what it is sure of).
ANSWERED_IN = frozenset({Conversation.Status.OPEN, Conversation.Status.PENDING_HUMAN})
# What the bot says to a turn with nothing it can read (a voice note, a photo without caption, ...),
# until media understanding exists: asking to write it keeps the conversation going.
UNREADABLE = {
    "audio": {
        "es": "Todavía no puedo escuchar audios. ¿Me lo puedes escribir?",
        "en": "I can't listen to audio yet. Could you write it, please?",
    },
    "image": {
        "es": "Todavía no puedo ver imágenes ni archivos. ¿Me cuentas por escrito qué necesitas?",
        "en": "I can't see images or files yet. Could you tell me in writing what you need?",
    },
    "other": {
        "es": "Todavía no puedo leer este tipo de mensaje. ¿Me lo puedes escribir?",
        "en": "I can't read this kind of message yet. Could you write it, please?",
    },
}
_UNREADABLE_KIND = {"audio": "audio", "image": "image", "video": "image", "document": "image"}
ROLE: dict[str, str] = {
    Message.Author.CUSTOMER: "customer",
    Message.Author.BOT: "assistant",
    Message.Author.AGENT: "agent",
}


def reply_request(*, conversation: Conversation, message: Message) -> bool:
    """After commit, ask for a reply once the customer has paused (adaptive debounce, `reply_wait`).

    With the assistant switched off for the workspace nothing is asked: the conversation waits for
    a person (pending_human), so it shows in the inbox as needing one. False then.
    """
    from apps.assistant.services import assistant_settings_get_or_create

    assistant = assistant_settings_get_or_create(workspace_id=conversation.workspace_id)
    if not assistant.enabled:
        conversation_move(conversation=conversation, move=Move.ASSISTANT_OFF)
        return False
    _schedule(conversation.pk, message.pk, reply_wait(message=message, pause=assistant.debounce_seconds))
    return True


def reply_wait(*, message: Message, pause: float) -> float:
    """Seconds to wait before answering the turn `message` ends.

    A lone message waits only REPLY_FIRST_WAIT, so it is answered fast. A message that follows an
    unanswered one of the same customer stored less than `pause` (the workspace's debounce) earlier
    means a burst is under way: wait `pause` for the next one, each message pushing the reply back
    (its task supersedes the earlier ones), but never past REPLY_BURST_MAX_WAIT after the turn's
    first unanswered message, so a customer who keeps typing is still answered.
    """
    first_wait: float = min(settings.REPLY_FIRST_WAIT, pause)
    conversation_id = message.conversation_id
    if conversation_id is None or pause <= 0:
        return first_wait  # no debounce: nothing to merge, no history to read
    answered = (
        Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.OUTBOUND)
        .exclude(author=Message.Author.SYSTEM)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    ) or 0
    unanswered = list(
        Message.objects.filter(
            conversation_id=conversation_id,
            direction=Message.Direction.INBOUND,
            pk__gt=answered,
            pk__lt=message.pk,
        )
        .order_by("pk")
        .values_list("created_at", flat=True)
    )
    now = timezone.now()
    if not unanswered or (now - unanswered[-1]).total_seconds() >= pause:
        return first_wait
    left: float = settings.REPLY_BURST_MAX_WAIT - (now - unanswered[0]).total_seconds()
    return max(min(pause, left), 0.0)


def _schedule(conversation_id: int, message_id: int, countdown: float) -> None:
    from apps.conversations.tasks import reply_generate

    def enqueue() -> None:
        if countdown > 0:
            reply_generate.apply_async((conversation_id, message_id), countdown=countdown)
        else:  # no wait: a plain task, not one the worker holds on its ETA timer and QoS (debounce 0)
            reply_generate.apply_async((conversation_id, message_id))

    transaction.on_commit(enqueue, robust=True)


def _pace_key(conversation: Conversation) -> str:
    return f"reply:{conversation.channel_id}:{conversation.contact_id}"


def _reply_pace(conversation: Conversation, hit_id: str) -> float:
    """Seconds until this customer may get another bot reply; 0 takes a reply slot now (`hit_id`).

    A customer sending dozens of messages a minute has every message stored, but the bot answers
    at most INBOUND_REPLY_RATE times per window: the turn waits, and the later reply covers it all.
    """
    limit, window = ratelimit.parse_rate(settings.INBOUND_REPLY_RATE)
    decision = ratelimit.limiter().hit(_pace_key(conversation), limit, window, hit_id=hit_id)
    return 0.0 if decision.allowed else max(decision.retry_after, 0.5)


def _turns(conversation: Conversation, upto_id: int) -> tuple[list[Message], list[Message]]:
    """(the customer's messages no reply has answered yet, the earlier messages), oldest first.

    What a reply answered is read from its key (`reply:<last message id>`), not from where it sorts:
    a customer message stored while the previous reply was being written has a lower id than that
    reply, yet that reply never saw it. An agent's message answers everything before it.
    """
    rows = list(
        Message.objects.filter(conversation=conversation)
        .exclude(author=Message.Author.SYSTEM)
        .exclude(handled_as__in=NOT_IN_HISTORY)
        .order_by("-pk")[: HISTORY_TURNS * 2]
    )
    rows.reverse()
    answered = 0
    for row in rows:
        if row.direction != Message.Direction.OUTBOUND:
            continue
        if row.author == Message.Author.BOT and row.dedupe_key.startswith("reply:"):
            answered = max(answered, int(row.dedupe_key.removeprefix("reply:").split("#")[0]))
        elif row.author == Message.Author.AGENT:
            before = [r.pk for r in rows if r.direction == Message.Direction.INBOUND and r.pk < row.pk]
            answered = max([answered, *before])
    # A message inbound processing already dealt with (an opt-out word, a reaction) is no question.
    burst = [
        r
        for r in rows
        if r.direction == Message.Direction.INBOUND and not r.handled_as and answered < r.pk <= upto_id
    ]
    earlier = [r for r in rows if r not in burst]
    return burst, earlier


def reply_generate(*, conversation_id: int, message_id: int) -> str:
    """Produce and queue the bot's reply to the turn ending with `message_id`; one reply per turn.

    A newer customer message means the burst is not over: its own task answers everything.
    Re-running (a retry, a crash after the LLM call) finds the reply queued under the same
    dedupe key and queues nothing more.
    """
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None or conversation.status not in ANSWERED_IN:
        return "not_open"
    log_context.bind(workspace_id=conversation.workspace_id, conversation_id=conversation.pk)
    latest = (
        Message.objects.filter(conversation=conversation, direction=Message.Direction.INBOUND, handled_as="")
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if latest != message_id:
        return "superseded"
    dedupe_key = f"reply:{message_id}"
    if Message.objects.filter(workspace_id=conversation.workspace_id, dedupe_key=dedupe_key).exists():
        return "already_replied"
    return _attempt(conversation, message_id)


def _attempt(conversation: Conversation, message_id: int) -> str:
    """One counted try at the turn's reply. A reply that keeps failing (or keeps killing its worker)
    stops after REPLY_MAX_ATTEMPTS: the conversation goes to a person, so nothing asks the LLM again."""
    counted = Message.objects.filter(pk=message_id).update(reply_attempts=F("reply_attempts") + 1)
    attempt = Message.objects.filter(pk=message_id).values_list("reply_attempts", flat=True).first()
    if not counted or attempt is None:
        return "superseded"  # the message is gone
    limit = settings.REPLY_MAX_ATTEMPTS
    if attempt > limit:  # the earlier tries ended without a word: their worker died
        return _give_up(conversation, message_id, attempt - 1, "every attempt ended without an answer")
    try:
        outcome = _answer(conversation, message_id)
    except _TRANSIENT:
        _uncount(message_id)  # an outage is not the turn's fault
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if attempt >= limit:
            return _give_up(conversation, message_id, attempt, error)
        Message.objects.filter(pk=message_id).update(last_error=error)
        raise
    if outcome in ("paced", "deferred"):
        _uncount(message_id)  # waiting for the customer's reply slot or the provider's bounds is not a try
    return outcome


def _uncount(message_id: int) -> None:
    try:
        Message.objects.filter(pk=message_id, reply_attempts__gt=0).update(
            reply_attempts=F("reply_attempts") - 1
        )
    except DatabaseError:
        pass


def _give_up(conversation: Conversation, message_id: int, attempts: int, error: str) -> str:
    burst, _ = _turns(conversation, message_id)
    with transaction.atomic():
        Message.objects.filter(pk=message_id).update(last_error=error)
        # Left for the person: the bot, which still answers while one is awaited, never retries this turn.
        Message.objects.filter(pk__in=[m.pk for m in burst] + [message_id]).update(handled_as="to_person")
        conversation_move(conversation=conversation, move=Move.REPLY_FAILED)
    metrics.REPLY_GIVEN_UP.inc()
    # The error's class only: its text may quote the customer.
    logger.error(
        "reply to message %s given up after %s attempts (%s); conversation %s waits for a person",
        message_id,
        attempts,
        error.split(":", 1)[0],
        conversation.pk,
    )
    return "gave_up"


def _answer(conversation: Conversation, message_id: int) -> str:
    from apps.assistant.reply import confident_reply, generate_reply
    from apps.assistant.types import ReplyRequest, Turn

    dedupe_key = f"reply:{message_id}"
    burst, earlier = _turns(conversation, message_id)
    question = "\n".join(m.body for m in burst if m.body).strip()
    language = _language(conversation, question, earlier)
    if not question:
        if not burst:
            return "nothing_to_answer"
        return _ask_to_write(conversation, burst, language, dedupe_key)
    pace_hit = uuid.uuid4().hex
    wait = _reply_pace(conversation, pace_hit)
    if wait:
        logger.info("reply to %s paced: the customer's reply limit is reached for %.1f s", message_id, wait)
        _schedule(conversation.pk, message_id, wait)
        return "paced"
    history = [Turn(role=ROLE.get(m.author, "customer"), text=m.body) for m in earlier if m.body]
    request = ReplyRequest(
        workspace_id=conversation.workspace_id,
        question=question,
        history=history,
        customer_name=conversation.contact.display_name
        if conversation.contact.name or conversation.contact.profile_name
        else "",
        language_hint=language,
        conversation_id=conversation.pk,
        turn_key=dedupe_key,
        contact_id=conversation.contact_id,
        customer_phone=conversation.contact.wa_id,
        choice=_list_choice(burst),
        lists=conversation.channel.kind != "web",  # WhatsApp Web channels send text only
    )
    if conversation.status == Conversation.Status.PENDING_HUMAN:
        sure = confident_reply(request)
        if sure is None:
            # Left for the person who is coming (no second hand-off message), and out of later turns.
            ratelimit.limiter().forget(_pace_key(conversation), pace_hit)
            Message.objects.filter(pk__in=[m.pk for m in burst]).update(handled_as="to_person")
            return "waiting_for_person"
        return _queue(conversation, sure.text, dedupe_key, handoff=False)
    try:
        result = generate_reply(request)
    except Deferred as deferred:
        # Not answered yet: the customer's reply allowance is given back, and the task comes back
        # when the provider's bounds may let it through (re-queued, so it holds no worker meanwhile).
        ratelimit.limiter().forget(_pace_key(conversation), pace_hit)
        _schedule(conversation.pk, message_id, deferred.countdown)
        return "deferred"
    logger.info("reply to %s by %s (cache %s)", message_id, result.provider, result.cache_hit)
    return _queue(
        conversation,
        result.text,
        dedupe_key,
        handoff=result.handoff,
        providers_failed=message_id if result.providers_failed else None,
        interactive=result.interactive,
    )


def _list_choice(burst: list[Message]) -> str:
    """The id of the list row the customer picked, when their latest message is such a pick."""
    last = burst[-1] if burst else None
    if last is None or last.type != "interactive":
        return ""
    interactive = last.payload.get("interactive") if isinstance(last.payload, dict) else None
    picked = interactive.get("list_reply") if isinstance(interactive, dict) else None
    row_id = picked.get("id") if isinstance(picked, dict) else None
    return row_id[:200] if isinstance(row_id, str) else ""


def _queue(
    conversation: Conversation,
    text: str,
    dedupe_key: str,
    *,
    handoff: bool,
    providers_failed: int | None = None,
    interactive: dict[str, Any] | None = None,
) -> str:
    """`providers_failed`: the id of the customer's message every provider failed to answer."""
    with transaction.atomic():
        # The conversation may have been taken over (or handed off) while the reply was being written.
        current = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if current.status != conversation.status:
            return "not_open"
        message_enqueue(
            conversation=current,
            author=Message.Author.BOT,
            body=text,
            type="interactive" if interactive else "text",
            content=interactive,
            dedupe_key=dedupe_key,
            split_at=REPLY_PIECE,
        )
        if handoff:
            conversation_move(conversation=current, move=Move.MODEL_HANDOFF)
        if providers_failed is not None:  # after the offline reply is queued: it still goes out
            alerts_check(
                conversation=current,
                message=Message.objects.filter(pk=providers_failed).first(),
                signals=frozenset({"providers_failed"}),
            )
    return "handoff" if handoff else "replied"


def _language(conversation: Conversation, question: str, earlier: list[Message]) -> str:
    """The turn's language: its own words', else the contact's, else that of the customer's latest
    message that tells one; "" when none does (the assistant then takes the business's first)."""
    found = detect_language(question) or conversation.contact.language
    for message in reversed(earlier):
        if found:
            break
        if message.direction == Message.Direction.INBOUND and message.body:
            found = detect_language(message.body)
    return found


def _ask_to_write(conversation: Conversation, burst: list[Message], language: str, dedupe_key: str) -> str:
    """A turn of only voice notes, photos, stickers, unsupported types...: a sticker alone is met like an
    emoji; anything else with a request to write it, in the customer's language (never silence)."""
    from apps.assistant import offline
    from apps.assistant.services import profile_get_or_create

    profile = profile_get_or_create(workspace_id=conversation.workspace_id)
    language = offline.reply_language(profile=profile, question="", language=language)
    kinds = {_UNREADABLE_KIND.get(m.type, "other") for m in burst if m.type != "sticker"}
    if not kinds:
        text = offline.offline_reply(profile=profile, question="🙂", passages=[], language=language)[0]
    else:
        text = UNREADABLE[kinds.pop() if len(kinds) == 1 else "other"][language]
    if conversation.status == Conversation.Status.PENDING_HUMAN:
        from apps.assistant.reply import PENDING_NOTE

        text = f"{text}\n\n{PENDING_NOTE[language]}"
    return _queue(conversation, text, dedupe_key, handoff=False)
