"""The `web` transport: a send on a WhatsApp Web channel is handed to the worker-web process that owns
the channel's browser (commands.py), which marks the chat seen, types for a time proportional to the
length, then sends. Only text, and only to customers who wrote: WhatsApp Web never starts a chat."""

from __future__ import annotations

import logging

from django.conf import settings

from apps.conversations.transport import (
    REASON_INVALID_REQUEST,
    REASON_NETWORK,
    REASON_TIMEOUT,
    REASON_UNDELIVERABLE,
    MediaFile,
    OutboundRequest,
    SendError,
    SendResult,
    TransportChannel,
)
from apps.whatsapp_web import commands
from apps.whatsapp_web.inbound import chat_id_of, chat_id_of_message
from apps.whatsapp_web.media import media_read
from apps.whatsapp_web.selectors import customer_wrote

logger = logging.getLogger(__name__)

REASON_NOT_CONNECTED = "web_not_connected"
REASON_NO_CONVERSATION = "web_no_conversation"
READ_RECEIPT_TTL = 60.0


class WebTransport:
    def send(self, channel: TransportChannel, request: OutboundRequest) -> SendResult:
        if request.type != "text":
            raise SendError(
                f"WhatsApp Web channels send text only, not {request.type}",
                reason=REASON_INVALID_REQUEST,
                permanent=True,
            )
        if not customer_wrote(channel_id=channel.pk, to=request.to):
            raise SendError(
                "WhatsApp Web answers customers who wrote; it never starts a chat",
                reason=REASON_NO_CONVERSATION,
                permanent=True,
            )
        try:
            chat_id = chat_id_of(request.to)
        except ValueError as exc:
            raise SendError(str(exc), reason=REASON_UNDELIVERABLE, permanent=True) from exc
        body = str(request.content.get("body") or "")
        try:
            answer = commands.command_call(
                channel_id=channel.pk,
                op="send",
                args={"chat": chat_id, "body": body, "uid": request.message_uid},
                timeout=settings.WHATSAPP_WEB_SEND_TIMEOUT,
            )
        except commands.NoCommandChannel as exc:
            raise SendError(str(exc), reason=REASON_NETWORK, permanent=True) from exc
        except commands.NotTaken as exc:
            # Withdrawn before the browser saw it: nothing went out, a later try is safe.
            raise SendError(str(exc), reason=REASON_NOT_CONNECTED, permanent=False, retry_after=30) from exc
        except commands.NoReply as exc:
            raise SendError(str(exc), reason=REASON_TIMEOUT, permanent=False, outcome_unknown=True) from exc
        if answer.get("ok"):
            return SendResult(wamids=[str(answer["id"])])
        error = str(answer.get("error") or "send failed")
        # The browser reports whether the message could have left: only a refusal before the send call
        # (not connected, no such chat) is safe to try again.
        if answer.get("sent_maybe"):
            raise SendError(error, reason=REASON_TIMEOUT, permanent=False, outcome_unknown=True)
        if answer.get("permanent"):
            raise SendError(error, reason=REASON_UNDELIVERABLE, permanent=True)
        raise SendError(error, reason=REASON_NOT_CONNECTED, permanent=False, retry_after=30)

    def mark_read(self, channel: TransportChannel, wamid: str) -> None:
        chat = chat_id_of_message(wamid)
        if not chat:
            return
        try:
            commands.command_post(channel_id=channel.pk, op="seen", args={"chat": chat}, ttl=READ_RECEIPT_TTL)
        except commands.NoCommandChannel:
            logger.warning("read receipt for %s not sent: WhatsApp Web needs Redis", wamid)

    def fetch_media(self, channel: TransportChannel, media_id: str) -> MediaFile:
        """The file worker-web downloaded when the message arrived (media.py); WhatsApp Web cannot be
        asked for it again later."""
        kept = media_read(channel_id=channel.pk, wamid=media_id)
        if kept is None:
            raise SendError(
                "media unavailable: WhatsApp Web did not hand this file over when it arrived",
                reason=REASON_INVALID_REQUEST,
                permanent=True,
            )
        return kept
