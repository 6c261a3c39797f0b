"""Plain data the WhatsApp edge hands to the conversations domain (parsed from webhooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class InboundMessage:
    """One customer message. At least one of `from_wa_id` / `from_bsuid` is set."""

    wamid: str
    type: str  # Meta's type; unknown types are kept as they come
    timestamp: datetime
    from_wa_id: str = ""
    from_bsuid: str = ""
    from_name: str = ""
    body: str = ""  # text, caption, button title, reaction emoji, ... ("" when none)
    reply_to_wamid: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # sent, delivered, read, failed, played (or anything newer)
    timestamp: datetime
    recipient_id: str = ""
    callback_data: str = ""  # biz_opaque_callback_data: our Message.uid
    error_code: int | None = None
    error_title: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PreferenceUpdate:
    """A user_preferences webhook: the customer stopped or resumed marketing messages."""

    value: str  # "stop" or "resume"
    timestamp: datetime
    wa_id: str = ""
    bsuid: str = ""
    category: str = "marketing_messages"
