"""What the bridge reports of a WhatsApp Web message, turned into the Cloud API's message shape (pure
functions: no database, no browser).

The result goes through the webhook's own parser (`payloads.message_parse`), so a message that arrives
through WhatsApp Web is stored, deduplicated (by WhatsApp's message id) and processed exactly like one
from the Cloud API: nothing downstream knows the channel kind.
"""

from __future__ import annotations

import logging
from typing import Any

from apps.conversations.events import InboundMessage, StatusUpdate
from apps.whatsapp.payloads import message_parse, status_parse

logger = logging.getLogger(__name__)

USER_SUFFIX = "@c.us"
LID_SUFFIX = "@lid"  # WhatsApp's linked ids: a user known without a phone number
# WhatsApp Web's message types -> the Cloud API's.
MEDIA = {"image": "image", "video": "video", "audio": "audio", "ptt": "audio", "document": "document"}
MEDIA_PLAIN = {"sticker": "sticker"}
# WhatsApp Web's acks of our messages -> the Cloud API's statuses (0, pending, is no news).
ACKS = {1: "sent", 2: "delivered", 3: "read", 4: "played", -1: "failed"}


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
        # The file, downloaded by worker-web before storing (media.py), or why there is none.
        if event.get("mediaError"):
            media["unavailable"] = str(event["mediaError"])[:200]
        elif isinstance(kept := event.get("media"), dict):
            media.update(sha256=str(kept.get("sha256") or ""), file_size=int(kept.get("size") or 0))
            media["mime_type"] = str(kept.get("mimetype") or media["mime_type"])
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


def status_updates(events: list[dict[str, Any]], uids: dict[str, str]) -> list[StatusUpdate]:
    """The bridge's ack events of our own messages as the Cloud status webhook's updates, parsed by the
    webhook's parser; `uids` names the platform's message behind a WhatsApp id when worker-web sent it
    (its answer may reach the sender after the receipt)."""
    result = []
    for event in events:
        ack = event.get("ack") if isinstance(event, dict) else None
        status = ACKS.get(ack) if isinstance(ack, int) else None
        if status is None or not isinstance(event.get("ids"), list):
            continue
        for wamid in event["ids"]:
            if not isinstance(wamid, str) or not wamid.startswith("true_"):
                continue
            raw: dict[str, Any] = {
                "id": wamid,
                "status": status,
                "timestamp": str(event.get("t") or ""),
                "recipient_id": chat_id_of_message(wamid).removesuffix(USER_SUFFIX),
            }
            if uid := uids.get(wamid):
                raw["biz_opaque_callback_data"] = uid
            if status == "failed":
                raw["errors"] = [{"title": "WhatsApp Web could not send the message"}]
            if parsed := status_parse(raw):
                result.append(parsed)
    return result
