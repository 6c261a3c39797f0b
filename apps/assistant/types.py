"""Plain data in and out of the assistant. It never sees conversation rows, only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    role: str  # "customer", "assistant" (the bot) or "agent" (a person of the business)
    text: str


@dataclass(frozen=True)
class ReplyRequest:
    workspace_id: int
    question: str  # the customer's latest turn (a burst of messages already merged)
    history: list[Turn] = field(default_factory=list)  # earlier turns, oldest first
    customer_name: str = ""
    language_hint: str = ""  # "es" / "en" when known
    conversation_id: int | None = None
    turn_key: str = ""  # identifies the customer turn; one reply per turn
    # The contact, for booking tools: bookings are made in this contact's name and number only.
    contact_id: int | None = None
    customer_phone: str = ""
    choice: str = ""  # the id of the list row the customer picked (an interactive list_reply), if any
    lists: bool = True  # whether the channel can send WhatsApp list messages (WhatsApp Web sends text only)


@dataclass(frozen=True)
class Passage:
    entry_id: int
    title: str
    text: str
    score: float
    kind: str = "faq"


@dataclass(frozen=True)
class ReplyResult:
    text: str
    handoff: bool  # the assistant could not help: a person should take the conversation
    provider: str
    model: str = ""
    cache_hit: bool = False
    usage_id: int | None = None
    providers_failed: bool = False  # providers were configured and none answered (offline reply)
    # A WhatsApp interactive object (a list of times) to send instead of plain text; `text` is its body.
    interactive: dict[str, Any] | None = None
