"""Meta's webhook deliveries turned into plain data (pure functions: no database, no network).

A delivery is checked for Meta's outer shape only (`delivery_load`, a 400 otherwise). Below that
everything is parsed tolerantly: an item with the wrong types is skipped with a warning and the
rest of the delivery is kept, because Meta re-delivers a rejected delivery for days.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.conversations.events import InboundMessage, PreferenceUpdate, StatusUpdate

logger = logging.getLogger(__name__)

OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"
PREFERENCES_FIELD = "user_preferences"
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
PREFERENCE_VALUES = frozenset({"stop", "resume"})
# Preference values that say nothing about stopping or resuming marketing ("signup": the user opted in
# through a signup link, which this platform does not run): logged, not applied.
PREFERENCE_NOTICES = frozenset({"signup"})
# Column sizes of conversations.Message: a longer id would fail the insert, and with it the whole
# delivery on every re-delivery, so such items are refused here (test_payloads pins them).
WAMID_MAX = 255
WA_ID_MAX = 32
BSUID_MAX = 128
TYPE_MAX = 32

# An escaped U+0000 that is not itself an escaped backslash: PostgreSQL stores it in neither
# text nor jsonb, so one such character would fail the delivery on every re-delivery.
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class PayloadError(ValueError):
    """The body is not a WhatsApp Business webhook delivery."""


@dataclass
class ChannelBatch:
    """What one delivery carries for one business phone number."""

    phone_number_id: str
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    preferences: list[PreferenceUpdate] = field(default_factory=list)


def delivery_load(body: bytes) -> dict[str, Any]:
    """The delivery as JSON; PayloadError unless it has Meta's outer shape (`object`, `entry[].changes[]`)."""
    try:
        text = body.decode("utf-8")
        if "\\u0000" in text:
            text = _ESCAPED_NUL.sub(r"\1", text)
        delivery = json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise PayloadError("the body is not JSON") from exc
    if not isinstance(delivery, dict) or delivery.get("object") != OBJECT:
        raise PayloadError(f"`object` is not {OBJECT!r}")
    entries = delivery.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("`entry` is not a list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            raise PayloadError("an entry has no `changes` list")
    return delivery


def delivery_phone_number_ids(delivery: dict[str, Any]) -> set[str]:
    """The business phone numbers a delivery addresses (`value.metadata.phone_number_id`)."""
    return {phone_number_id for phone_number_id, _, _ in _changes(delivery, warn=False) if phone_number_id}


def delivery_account_ids(delivery: dict[str, Any]) -> set[str]:
    """The WhatsApp Business Account ids (`entry[].id`); account-wide changes name no phone number."""
    return {entry["id"] for entry in delivery["entry"] if isinstance(entry.get("id"), str) and entry["id"]}


def delivery_parse(delivery: dict[str, Any]) -> dict[str, ChannelBatch]:
    """Every message, status and preference of a loaded delivery, grouped by phone_number_id."""
    batches: dict[str, ChannelBatch] = {}
    for phone_number_id, change_field, value in _changes(delivery, warn=True):
        if change_field not in (MESSAGES_FIELD, PREFERENCES_FIELD):
            logger.debug("webhook change field %r ignored", change_field)
            continue
        if not phone_number_id:
            logger.warning("webhook %s change without metadata.phone_number_id skipped", change_field)
            continue
        batch = batches.setdefault(phone_number_id, ChannelBatch(phone_number_id=phone_number_id))
        if change_field == MESSAGES_FIELD:
            _log_errors(value.get("errors"), f"webhook change for {phone_number_id}")
            contacts = [c for c in _items(value, "contacts") if isinstance(c, dict)]
            for item in _items(value, "messages"):
                if message := message_parse(item, contacts):
                    batch.messages.append(message)
            for item in _items(value, "statuses"):
                if status := status_parse(item):
                    batch.statuses.append(status)
        else:
            for item in _items(value, "user_preferences"):
                if preference := preference_parse(item):
                    batch.preferences.append(preference)
    return batches


def message_parse(message: Any, contacts: list[dict[str, Any]]) -> InboundMessage | None:
    """One entry of `value.messages`; None (with a warning) when its id, sender, type or time is unusable.

    Content of the wrong type only empties the body: the message is kept, and `raw` holds all of it.
    """
    if not isinstance(message, dict):
        logger.warning("webhook message that is not an object skipped")
        return None
    wamid = _string(message.get("id"), WAMID_MAX)
    kind = message.get("type")
    timestamp = _timestamp(message.get("timestamp"))
    if not wamid or not isinstance(kind, str) or not kind or timestamp is None:
        logger.warning("webhook message %r without a usable id, type or timestamp skipped", wamid)
        return None
    wa_id = _string(message.get("from"), WA_ID_MAX)
    bsuid = _string(message.get("from_user_id"), BSUID_MAX)
    contact = _sender(contacts, wa_id=wa_id, bsuid=bsuid)
    if contact is None and not wa_id and not bsuid and len(contacts) == 1:
        contact = contacts[0]  # the sender named only in `contacts` (wa_id and/or user_id)
    if not wa_id and not bsuid and contact is not None:
        wa_id = _string(contact.get("wa_id"), WA_ID_MAX)
        bsuid = _string(contact.get("user_id"), BSUID_MAX)
    if not wa_id and not bsuid:
        logger.warning(
            "webhook message %s skipped: no sender in `from`, `from_user_id` or a single `contacts` entry",
            wamid,
        )
        return None
    _log_errors(message.get("errors"), f"webhook message {wamid} ({kind})")
    if contact is not None:
        wa_id = wa_id or _string(contact.get("wa_id"), WA_ID_MAX)
        bsuid = bsuid or _string(contact.get("user_id"), BSUID_MAX)
    body, reply_to = message_body(message)
    return InboundMessage(
        wamid=wamid,
        type=kind[:TYPE_MAX],
        timestamp=timestamp,
        from_wa_id=wa_id,
        from_bsuid=bsuid,
        from_name=_profile_name(contact),
        body=body,
        reply_to_wamid=reply_to or _string(_dict(message.get("context")).get("id"), WAMID_MAX),
        raw=message,
    )


def message_body(message: dict[str, Any]) -> tuple[str, str]:
    """The readable text of a message by its type, and the wamid it reacts to ("" when none)."""
    kind = message.get("type")
    content = _dict(message.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        return _string(content.get("body")), ""
    if kind == "interactive":
        reply = _dict(content.get(_string(content.get("type"))))  # button_reply, list_reply, nfm_reply
        return _string(reply.get("title")) or _string(reply.get("body")), ""
    if kind == "button":
        return _string(content.get("text")), ""
    if kind == "reaction":
        return _string(content.get("emoji")), _string(content.get("message_id"), WAMID_MAX)
    if kind in MEDIA_TYPES:
        return _string(content.get("caption")), ""
    if kind == "location":
        place = ", ".join(
            text for text in (_string(content.get("name")), _string(content.get("address"))) if text
        )
        lat, lng = content.get("latitude"), content.get("longitude")
        if not place and _is_number(lat) and _is_number(lng):
            place = f"{lat},{lng}"
        return place, ""
    if kind == "contacts":
        cards = message.get("contacts")
        cards = cards if isinstance(cards, list) else []
        names = (_string(_dict(_dict(card).get("name")).get("formatted_name")) for card in cards)
        return ", ".join(name for name in names if name), ""
    if kind == "order":
        items = content.get("product_items")
        lines = [
            f"{item.get('quantity')} x {_string(item.get('product_retailer_id'))}"
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]
        return "\n".join(text for text in (_string(content.get("text")), *lines) if text), ""
    if kind == "system":
        return _string(content.get("body")), ""
    if kind == "edit":  # the new content of an earlier message
        edited = _dict(content.get("message"))
        return message_body(edited)[0], _string(content.get("original_message_id"), WAMID_MAX)
    if kind == "revoke":
        return "", _string(content.get("original_message_id"), WAMID_MAX)
    return "", ""  # unsupported and types newer than this code


def status_parse(status: Any) -> StatusUpdate | None:
    """One entry of `value.statuses`; None (with a warning) when its id, status or time is unusable."""
    if not isinstance(status, dict):
        logger.warning("webhook status that is not an object skipped")
        return None
    wamid = _string(status.get("id"), WAMID_MAX)
    state = _string(status.get("status"))
    timestamp = _timestamp(status.get("timestamp"))
    if not wamid or not state or timestamp is None:
        logger.warning("webhook status %r without a usable id, status or timestamp skipped", wamid)
        return None
    errors = status.get("errors")
    error = _dict(errors[0]) if isinstance(errors, list) and errors else {}
    code = error.get("code")
    return StatusUpdate(
        wamid=wamid,
        status=state,
        timestamp=timestamp,
        recipient_id=_string(status.get("recipient_id")),
        callback_data=_string(status.get("biz_opaque_callback_data")),
        error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        error_title=_string(error.get("title")),
        raw=status,
    )


def preference_parse(preference: Any) -> PreferenceUpdate | None:
    """One entry of `value.user_preferences`; None (with a warning) unless it says who stopped or resumed."""
    if not isinstance(preference, dict):
        logger.warning("webhook user preference that is not an object skipped")
        return None
    value = preference.get("value")
    wa_id = _string(preference.get("wa_id"), WA_ID_MAX)
    bsuid = _string(preference.get("user_id"), BSUID_MAX)
    timestamp = _timestamp(preference.get("timestamp"))
    if value in PREFERENCE_NOTICES:
        logger.info(
            "webhook user preference %r (%s) noted, nothing to apply", value, preference.get("category")
        )
        return None
    if value not in PREFERENCE_VALUES or not (wa_id or bsuid) or timestamp is None:
        logger.warning("webhook user preference %r without a user, a time or stop/resume skipped", value)
        return None
    category = _string(preference.get("category")) or "marketing_messages"
    return PreferenceUpdate(value=value, timestamp=timestamp, wa_id=wa_id, bsuid=bsuid, category=category)


def _changes(delivery: dict[str, Any], *, warn: bool) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(phone_number_id or "", field, value) of every well-formed change of a loaded delivery."""
    for entry in delivery["entry"]:
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                if warn:
                    logger.warning("webhook change without a `value` object skipped")
                continue
            change_field = change.get("field")
            value = change["value"]
            phone_number_id = _string(_dict(value.get("metadata")).get("phone_number_id"))
            yield phone_number_id, change_field if isinstance(change_field, str) else "", value


def _items(value: dict[str, Any], key: str) -> list[Any]:
    items = value.get(key, [])
    if isinstance(items, list):
        return items
    logger.warning("webhook `%s` that is not a list skipped", key)
    return []


def _log_errors(errors: Any, where: str) -> None:
    """Meta's `errors` (on a change or a message): the reason a message came without content."""
    for error in errors if isinstance(errors, list) else []:
        error = _dict(error)
        logger.warning("%s carries error %s: %s", where, error.get("code"), _string(error.get("title"))[:200])


def _sender(contacts: list[dict[str, Any]], *, wa_id: str, bsuid: str) -> dict[str, Any] | None:
    for contact in contacts:
        if (wa_id and contact.get("wa_id") == wa_id) or (bsuid and contact.get("user_id") == bsuid):
            return contact
    return None


def _profile_name(contact: dict[str, Any] | None) -> str:
    return _string(_dict(_dict(contact).get("profile")).get("name"))


def _timestamp(value: Any) -> datetime | None:
    """Meta's unix seconds (a string, sometimes a number) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _string(value: Any, limit: int | None = None) -> str:
    """`value` when it is a string (of at most `limit` characters), else ""."""
    if not isinstance(value, str) or (limit is not None and len(value) > limit):
        return ""
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
