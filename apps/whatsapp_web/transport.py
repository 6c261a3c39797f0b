"""The `web` transport: a send on a WhatsApp Web channel is handed to the worker-web process that owns
the channel's browser (commands.py), which marks the chat seen, types (or records, for audio) for a
time proportional to the length, then sends. Text, and files (image, video, audio, document: uploaded
by staff, or given by an https link), only to customers who wrote: WhatsApp Web never starts a chat.
What WhatsApp Web cannot send (templates, buttons and lists, ...) is refused for good, saying why."""

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
from apps.whatsapp_web.media import UPLOAD_PREFIX, media_read, outbox_save, size_label
from apps.whatsapp_web.selectors import customer_wrote

logger = logging.getLogger(__name__)

REASON_NOT_CONNECTED = "web_not_connected"
REASON_NO_CONVERSATION = "web_no_conversation"
READ_RECEIPT_TTL = 60.0
MEDIA_TYPES = frozenset({"image", "video", "audio", "document"})
# What the platform may ask for that a WhatsApp Web channel cannot send, and why (a permanent refusal).
CANNOT_SEND = {
    "template": "templates are approved and sent by Meta's Cloud API only",
    "interactive": "WhatsApp Web does not deliver reply buttons or lists to customers' phones",
    "sticker": "stickers are not sent from WhatsApp Web channels (send the picture as an image)",
    "location": "locations are not sent from WhatsApp Web channels yet (planned)",
    "contacts": "contact cards are not sent from WhatsApp Web channels yet (planned)",
    "reaction": "reactions are not sent from WhatsApp Web channels yet (planned)",
}


class WebTransport:
    def send(self, channel: TransportChannel, request: OutboundRequest) -> SendResult:
        if request.type != "text" and request.type not in MEDIA_TYPES:
            why = CANNOT_SEND.get(
                request.type, "WhatsApp Web channels send text, images, video, audio and documents"
            )
            raise SendError(
                f"WhatsApp Web cannot send a {request.type} message: {why}",
                reason=REASON_INVALID_REQUEST,
                permanent=True,
            )
        args = self._file_args(request) if request.type in MEDIA_TYPES else {}
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
        if args:
            op, timeout = (
                "send_file",
                settings.WHATSAPP_WEB_SEND_TIMEOUT + settings.WHATSAPP_WEB_MEDIA_TIMEOUT,
            )
        else:
            op, timeout = "send", settings.WHATSAPP_WEB_SEND_TIMEOUT
            args = {"body": str(request.content.get("body") or "")}
        try:
            answer = commands.command_call(
                channel_id=channel.pk,
                op=op,
                args={**args, "chat": chat_id, "uid": request.message_uid},
                timeout=timeout,
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
            reason = REASON_INVALID_REQUEST if answer.get("refused") else REASON_UNDELIVERABLE
            raise SendError(error, reason=reason, permanent=True)
        raise SendError(error, reason=REASON_NOT_CONNECTED, permanent=False, retry_after=30)

    def _file_args(self, request: OutboundRequest) -> dict[str, str]:
        """What worker-web needs to send a file: the uploaded file's id or the link (the bytes are read
        there, bounded), its kind, caption and file name. Refuses what cannot be sent, for good."""
        content = request.content
        media_id, link = str(content.get("id") or ""), str(content.get("link") or "")
        if bool(media_id) == bool(link):
            problem = f"a {request.type} message needs exactly one of id and link"
        elif media_id and not media_id.startswith(UPLOAD_PREFIX):
            problem = "a media id of Meta's Cloud API cannot be sent from a WhatsApp Web channel"
        elif link and not link.startswith("https://"):
            problem = "a file is sent from an https:// link only"
        elif request.type == "audio" and content.get("caption"):
            problem = "WhatsApp takes no caption on audio"
        else:
            problem = ""
        if problem:
            raise SendError(problem, reason=REASON_INVALID_REQUEST, permanent=True)
        args = {"kind": request.type, "caption": str(content.get("caption") or "")}
        args.update({"media_id": media_id} if media_id else {"link": link})
        if request.type == "document":
            args["filename"] = str(content.get("filename") or "document")
        return args

    def upload_media(
        self, channel: TransportChannel, *, content: bytes, mime_type: str, filename: str
    ) -> str:
        """Keep the file beside worker-web's (media.py) until it is sent; the id a send names."""
        limit = settings.WHATSAPP_WEB_SEND_MAX_BYTES
        if len(content) > limit:
            raise SendError(
                f"WhatsApp Web channels send files up to {size_label(limit)}",
                reason=REASON_INVALID_REQUEST,
                permanent=True,
            )
        try:
            return outbox_save(channel_id=channel.pk, content=content, mime_type=mime_type, filename=filename)
        except OSError as exc:
            raise SendError(
                f"the file could not be kept: {exc}", reason=REASON_NETWORK, permanent=True
            ) from exc

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
