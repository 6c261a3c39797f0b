"""Celery doors into the conversations services. A task's name starts with its queue."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings

from apps.conversations.models import Message
from apps.conversations.services import inbound, outbound, replies, sender, sweeper
from apps.conversations.transport import SendError, transport_for
from celery_app import app

logger = logging.getLogger(__name__)


# Both retry only outages (BaseTask); a bug is tried again by the sweeper, within the message's or
# the turn's attempt budget (INBOUND_MAX_ATTEMPTS, REPLY_MAX_ATTEMPTS), not by a retry loop here.
@app.task(name="inbound.message_process")
def inbound_message_process(message_id: int) -> str:
    return inbound.inbound_message_process(message_id=message_id)


@app.task(name="llm.reply_generate")
def reply_generate(conversation_id: int, message_id: int) -> str:
    return replies.reply_generate(conversation_id=conversation_id, message_id=message_id)


@app.task(name="outbound.number_send")
def number_send(channel_id: int) -> str:
    """The number's sender for one slice (services/sender.py); hands over to a fresh task after it."""
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
