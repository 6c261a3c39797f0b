"""Celery doors into the conversations services. A task's name starts with its queue."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from celery import Task
from django.conf import settings

from apps.assistant.admission import Deferred
from apps.conversations.models import Message
from apps.conversations.services import alerting, inbound, outbound, replies, search_index, sender, sweeper
from apps.conversations.transport import SendError, transport_for
from celery_app import app
from chatbot import log_context
from chatbot.group_publish import GroupPublisher

logger = logging.getLogger(__name__)


# Both retry only outages (BaseTask); a bug is tried again by the sweeper, within the message's or
# the turn's attempt budget (INBOUND_MAX_ATTEMPTS, REPLY_MAX_ATTEMPTS), not by a retry loop here.
@app.task(name="inbound.message_process")
def inbound_message_process(message_id: int) -> str:
    log_context.bind(message_id=message_id)
    return inbound.inbound_message_process(message_id=message_id)


@app.task(name="inbound.messages_process")
def inbound_messages_process(message_ids: list[int]) -> dict[str, int]:
    """The ids one process's webhook requests stored together (see inbound_enqueue), in order.

    An outage stops the task and retries it whole (the ids done already are skipped); any other failure
    is the one message's: logged, left unprocessed for the sweeper as a single task's would be, and the
    rest go on.
    """
    outcomes: Counter[str] = Counter()
    for message_id in message_ids:
        try:
            with log_context.bound(message_id=message_id, workspace_id=None, conversation_id=None):
                outcomes[inbound.inbound_message_process(message_id=message_id)] += 1
        except inbound.TRANSIENT:
            raise
        except Exception:
            logger.exception("inbound message %s failed; the sweeper tries it again", message_id)
            outcomes["failed"] += 1
    return dict(outcomes)


def _inbound_send(message_ids: list[int]) -> None:
    if len(message_ids) == 1:
        inbound_message_process.delay(message_ids[0])
    else:
        inbound_messages_process.delay(message_ids)


# Called after the commit that stored the ids; returns once they reached the broker (or the failure was
# logged): many webhook requests of one process at once share one broker message.
inbound_enqueue = GroupPublisher(send=_inbound_send, name="inbound enqueue").publish


@app.task(name="llm.reply_generate")
def reply_generate(conversation_id: int, message_id: int) -> str:
    log_context.bind(conversation_id=conversation_id, message_id=message_id)
    return replies.reply_generate(conversation_id=conversation_id, message_id=message_id)


@app.task(name="llm.alert_sentiment_classify", bind=True, max_retries=20)
def alert_sentiment_classify(self: Task[..., str], message_id: int) -> str:
    """The LLM's sentiment for a sentiment rule that asked for it (off by default)."""
    try:
        return alerting.alert_sentiment_by_llm(message_id=message_id)
    except Deferred as deferred:
        raise self.retry(countdown=deferred.countdown) from None


@app.task(name="outbound.number_send")
def number_send(channel_id: int) -> str:
    """The number's sender for one slice (services/sender.py); hands over to a fresh task after it."""
    log_context.bind(channel_id=channel_id)
    report = sender.sender_run(
        channel_id=channel_id,
        slice_seconds=settings.OUTBOUND_SENDER_SLICE,
        threads=settings.OUTBOUND_SENDER_THREADS,
    )
    if report.result == "slice":
        number_send.delay(channel_id)
    elif report.result == "idle" and report.retry_in is not None:
        # One wake-up per number for its earliest retry (the sweeper covers a lost one).
        number_send.apply_async(
            (channel_id,), countdown=max(min(report.retry_in, outbound.BACKOFF_MAX), 0.05)
        )
    return report.result


@app.task(name="outbound.message_send")
def message_send(message_id: int) -> None:
    """Tasks queued before the per-number sender: wake the message's number instead."""
    channel_id = Message.objects.filter(pk=message_id).values_list("channel_id", flat=True).first()
    if channel_id is not None:
        outbound.sender_wake(channel_id)


@app.task(name="outbound.mark_read")
def message_mark_read(message_id: int) -> None:
    message = Message.objects.select_related("channel").filter(pk=message_id).first()
    if message is None or not message.wamid:
        return
    try:
        transport_for(message.channel).mark_read(message.channel, message.wamid)
    except SendError as exc:  # a missing read receipt is not worth a retry storm
        logger.info("read receipt for %s not sent: %s", message_id, exc.reason)


@app.task(name="default.queue_sweep")
def queue_sweep() -> dict[str, int]:
    return sweeper.sweep(processing_timeout=timedelta(seconds=settings.OUTBOUND_PROCESSING_TIMEOUT))


@app.task(name="default.search_index_update")
def search_index_update() -> dict[str, int | bool]:
    """The inbox search's words for the messages stored since the last run, then some history (beat)."""
    return vars(search_index.search_index_update())


@app.task(name="default.alert_conditions_sweep")
def alert_conditions_sweep() -> dict[str, int]:
    """Alerts of the conditions measured over time: nobody answered, deliveries failing (beat)."""
    return alerting.alert_conditions_sweep()
