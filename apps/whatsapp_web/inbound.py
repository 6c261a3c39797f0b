"""What the bridge reports of a WhatsApp Web message, turned into the Cloud API's message shape (pure
functions: no database, no browser).

The result goes through the webhook's own parser (`payloads.message_parse`), so a message that arrives
through WhatsApp Web is stored, deduplicated (by WhatsApp's message id) and processed exactly like one
from the Cloud API: nothing downstream knows the channel kind.
"""

from __future__ import annotations

import logging
from typing import Any

from apps.conversations.events import InboundMessage
from apps.whatsapp.payloads import message_parse

logger = logging.getLogger(__name__)

USER_SUFFIX = "@c.us"
LID_SUFFIX = "@lid"  # WhatsApp's linked ids: a user known without a phone number
# WhatsApp Web's message types -> the Cloud API's.
MEDIA = {"image": "image", "video": "video", "audio": "audio", "ptt": "audio", "document": "document"}
MEDIA_PLAIN = {"sticker": "sticker"}


def chat_id_of(to: str) -> str:
    """The WhatsApp Web chat id of a customer we address by wa_id (digits) or by linked id."""
    if to.endswith((USER_SUFFIX, LID_SUFFIX)):
        return to
    digits = "".join(ch for ch in to if ch.isdigit())
    if not digits:
        raise ValueError(f"not a WhatsApp id: {to!r}")
    return f"{digits}{USER_SUFFIX}"


def chat_id_of_message(wamid: str) -> str:
    """The chat a serialized WhatsApp Web message id belongs to ("false_<chat>_<id>"), or ""."""
    parts = wamid.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] in ("true", "false") else ""


def _sender(raw_from: str) -> tuple[str, str] | None:
    """(wa_id, bsuid) of a one-to-one sender; None for groups, broadcasts and the status feed."""
    if raw_from.endswith(USER_SUFFIX):
        digits = raw_from.removesuffix(USER_SUFFIX)
        return (digits, "") if digits.isdigit() else None
    if raw_from.endswith(LID_SUFFIX) and raw_from.removesuffix(LID_SUFFIX).isdigit():
        return "", raw_from
    return None


def cloud_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """The bridge's message event in the Cloud API's `value.messages[]` shape; None when it is not a
    customer's message to us (our own, a group's, a status update's)."""
    if event.get("fromMe") or event.get("isGroup") or event.get("isStatus"):
        return None
    sender = _sender(str(event.get("from") or ""))
    if sender is None:
        return None
    wa_id, bsuid = sender
    kind = str(event.get("type") or "")
    wamid = str(event.get("id") or "")
    message: dict[str, Any] = {"id": wamid, "timestamp": str(event.get("t") or "")}
    if wa_id:
        message["from"] = wa_id
    if bsuid:
        message["from_user_id"] = bsuid
    if quoted := event.get("quotedMsgId"):
        message["context"] = {"id": str(quoted)}
    body = str(event.get("body") or "")
    if kind == "chat":
        message.update(type="text", text={"body": body})
    elif kind in MEDIA or kind in MEDIA_PLAIN:
        cloud_type = MEDIA.get(kind) or MEDIA_PLAIN[kind]
        media: dict[str, Any] = {"id": wamid, "mime_type": str(event.get("mimetype") or "")}
        if kind in MEDIA and kind != "ptt" and kind != "audio":
            media["caption"] = str(event.get("caption") or "")
        if kind == "ptt":
            media["voice"] = True
        if kind == "document" and event.get("filename"):
            media["filename"] = str(event["filename"])
        message.update(type=cloud_type, **{cloud_type: media})
    elif kind == "location":
        message.update(
            type="location",
            location={"latitude": event.get("lat"), "longitude": event.get("lng"), "name": body},
        )
    elif kind in ("vcard", "multi_vcard"):
        name = str(event.get("vcardName") or "")
        if not name and "FN:" in body:
            name = body.split("FN:", 1)[1].splitlines()[0]
        message.update(type="contacts", contacts=[{"name": {"formatted_name": name.strip()}}])
    elif kind == "reaction":
        message.update(
            type="reaction",
            reaction={"message_id": str(event.get("reactionTo") or ""), "emoji": body},
        )
    elif kind == "revoked":
        message.update(type="revoke", revoke={"original_message_id": str(event.get("revokedId") or "")})
    else:
        message.update(type="unsupported", unsupported={"type": kind})
    return message


def inbound_messages(events: list[dict[str, Any]]) -> list[InboundMessage]:
    """Every customer message of the bridge's events, parsed by the webhook's parser."""
    result = []
    for event in events:
        if not isinstance(event, dict):
            continue
        message = cloud_message(event)
        if message is None:
            logger.debug("WhatsApp Web message %r not from a customer: skipped", event.get("id"))
            continue
        contact: dict[str, Any] = {"profile": {"name": str(event.get("notifyName") or "")}}
        if message.get("from"):
            contact["wa_id"] = message["from"]
        if message.get("from_user_id"):
            contact["user_id"] = message["from_user_id"]
        if parsed := message_parse(message, [contact]):
            result.append(parsed)
    return result
