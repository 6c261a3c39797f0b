"""What conversations hands to the alert rules, and what it applies of their decision.

Alerts evaluates plain facts (apps/alerts/rules.py) and writes its own alerts and notifications;
the only decision taken here is "hand the conversation to a person", through the state machine.
Conditions seen elsewhere in the pipeline come as signals: the customer asked for a person
(inbound), every LLM provider failed (replies), and the two the sweep below measures over time:
nobody answered a waiting customer, and a number's deliveries fail above a rate.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import RedisError

from apps.alerts import selectors as alert_selectors
from apps.alerts.rules import Facts, llm_sentiment_wanted, matches, workspace_rules
from apps.alerts.services import alerts_evaluate
from apps.assistant.sentiment import sentiment_classify
from apps.conversations.models import Conversation, Message
from apps.conversations.services.status import Move, conversation_move

logger = logging.getLogger(__name__)

# An outage (as inbound.TRANSIENT) goes up to the task's retry; any other fault is the rules'.
TRANSIENT = (OperationalError, InterfaceError, RedisError, OSError)
SWEEP_LIMIT = 500  # waiting conversations per workspace and sweep; the next sweep takes the rest


def alerts_check(
    *,
    conversation: Conversation,
    message: Message | None,
    text: str = "",
    signals: frozenset[str] = frozenset(),
) -> int:
    """Evaluate the rules on a customer message or a signal; the number of alerts raised.

    Runs in the caller's transaction with the conversation's row locked. A fault in the rules is
    logged and leaves the message's processing alone: an alert is worth less than the reply.
    """
    facts = Facts(
        workspace_id=conversation.workspace_id,
        channel_id=conversation.channel_id,
        conversation_id=conversation.pk,
        conversation_status=conversation.status,
        message_id=message.pk if message is not None else None,
        text=text,
        signals=signals,
    )
    return _apply(conversation, facts)


def _apply(conversation: Conversation, facts: Facts) -> int:
    try:
        rules = workspace_rules(facts.workspace_id)
        if facts.message_id is not None and llm_sentiment_wanted(rules, facts):
            _llm_sentiment_schedule(facts.message_id)
        if not rules or not matches(rules, facts):
            return 0  # no SQL (not even a savepoint) when no rule matches, once the rules are compiled
        with transaction.atomic():
            decision = alerts_evaluate(facts=facts)
    except TRANSIENT:
        raise
    except Exception:
        logger.exception("alert rules failed on conversation %s; processing goes on", conversation.pk)
        return 0
    if decision.hand_to_person and conversation.status == Conversation.Status.OPEN:
        conversation_move(conversation=conversation, move=Move.ALERT_HANDOFF)
    return len(decision.alerts)


def _llm_sentiment_schedule(message_id: int) -> None:
    from apps.conversations.tasks import alert_sentiment_classify

    transaction.on_commit(lambda: alert_sentiment_classify.delay(message_id), robust=True)


def alert_sentiment_by_llm(*, message_id: int) -> str:
    """Ask the workspace's LLM how the customer's message feels, then evaluate the sentiment rules that
    wait for it, holding the conversation's lock as inbound does. The call is made outside any
    transaction. Raises admission.Deferred when the first provider is busy (the task comes back)."""
    message = Message.objects.filter(pk=message_id, direction=Message.Direction.INBOUND).first()
    if message is None or message.conversation_id is None or not message.body:
        return "gone"
    if alert_selectors.llm_sentiment_alert_exists(message_id=message.pk):
        return "done_already"  # a task run twice raises nothing twice, whatever the cool-down
    score = sentiment_classify(workspace_id=message.workspace_id, text=message.body)
    if score is None:
        logger.warning("no LLM provider scored message %s; its LLM sentiment rules are skipped", message.pk)
        return "unscored"
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=message.conversation_id).first()
        if conversation is None:
            return "gone"
        facts = Facts(
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            conversation_id=conversation.pk,
            conversation_status=conversation.status,
            message_id=message.pk,
            text=message.body,
            llm_score=score,
        )
        return f"raised {_apply(conversation, facts)}"


def alert_conditions_sweep() -> dict[str, int]:
    """Raise the alerts of the conditions measured over time (beat, every minute)."""
    return {
        "no_answer": sum(_no_answer(ws, minutes) for ws, minutes in alert_selectors.no_answer_rules()),
        "delivery_failures": sum(
            _delivery_failures(ws, minutes) for ws, minutes in alert_selectors.delivery_failure_windows()
        ),
    }


def _no_answer(workspace_id: int, minutes: int) -> int:
    """Conversations waiting for a person whose customer wrote `minutes` ago or more, unanswered."""
    now = timezone.now()
    waiting = (
        Conversation.objects.filter(
            workspace_id=workspace_id,
            status=Conversation.Status.PENDING_HUMAN,
            last_inbound_at__lte=now - timedelta(minutes=minutes),
        )
        .filter(Q(human_activity_at__isnull=True) | Q(human_activity_at__lt=F("last_inbound_at")))
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    raised = 0
    for pk in list(waiting):
        with transaction.atomic():
            # Locked as inbound processing locks it, so the cool-down holds against a message's alerts.
            conversation = (
                Conversation.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=Conversation.Status.PENDING_HUMAN)
                .first()
            )
            if conversation is None or conversation.last_inbound_at is None:
                continue
            waited = int((now - conversation.last_inbound_at).total_seconds() // 60)
            facts = Facts(
                workspace_id=workspace_id,
                channel_id=conversation.channel_id,
                conversation_id=conversation.pk,
                conversation_status=conversation.status,
                signals=frozenset({"no_answer"}),
                waited_minutes=waited,
                detail=f"waiting {waited} min for a person",
            )
            raised += _apply(conversation, facts)
    return raised


def _delivery_failures(workspace_id: int, minutes: int) -> int:
    """Per number: the share of the sends settled in the last `minutes` that failed."""
    since = timezone.now() - timedelta(minutes=minutes)
    settled = Message.objects.filter(
        workspace_id=workspace_id,
        direction=Message.Direction.OUTBOUND,
        created_at__gte=since,
        send_state__in=[Message.SendState.SENT, Message.SendState.FAILED],
    )
    raised = 0
    channels = settled.values_list("channel_id", flat=True).distinct()
    for channel_id in list(channels):
        rows = settled.filter(channel_id=channel_id)
        total = rows.count()
        failed = rows.filter(Q(send_state=Message.SendState.FAILED) | Q(status=Message.Status.FAILED)).count()
        if not total:
            continue
        rate = failed / total
        facts = Facts(
            workspace_id=workspace_id,
            channel_id=channel_id,
            conversation_id=None,
            conversation_status="",
            signals=frozenset({"delivery_failures"}),
            window_minutes=minutes,
            sent_count=total,
            failure_rate=rate,
            detail=f"{failed} of {total} sends failed in {minutes} min ({rate:.0%})",
        )
        try:
            with transaction.atomic():
                raised += len(alerts_evaluate(facts=facts).alerts)
        except TRANSIENT:
            raise
        except Exception:
            logger.exception("delivery-failure rules failed for channel %s", channel_id)
    return raised
