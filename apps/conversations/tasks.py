"""Celery doors into the conversations services. A task's name starts with its queue."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings

from apps.conversations.models import Message
from apps.conversations.services import inbound, outbound, replies, sweeper
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


@app.task(name="outbound.message_send", bind=True)
def message_send(self: object, message_id: int) -> str:
    outcome = outbound.message_send(message_id=message_id)
    if outcome.result in ("deferred", "retry"):
        # The row holds the schedule; the countdown only wakes us when it is due (the sweeper
        # re-enqueues if this message is ever lost).
        message_send.apply_async((message_id,), countdown=max(outcome.countdown, 0.05))
    return outcome.result


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
