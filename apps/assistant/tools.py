"""The booking tools a chat model may call (OpenAI function calling, through litellm).

The model chooses a tool and its arguments; everything else comes from the conversation: who the
customer is (`chat.Customer`, from the contact), which workspace, the idempotency of a booking. Each
call's arguments are validated here; a bad call gets an error result the model can correct, never an
exception. Results are JSON, in the customer's language where they carry a sentence to say.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from apps.calendar import chat
from apps.calendar.chat import Customer

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 3  # model turns that may call tools in one reply; one more turn must answer in text
MAX_CALLS_PER_ROUND = 4  # tool calls run from one model turn; more are answered with an error

ACTIONS = frozenset({"book", "reschedule", "cancel"})  # tools that change a booking

_START = {
    "type": "string",
    "description": "The slot's start exactly as find_slots returned it (ISO 8601 with offset).",
}
SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "find_slots",
            "description": "Free appointment times of a service. Call it before offering any time; "
            "never offer a time it did not return.",
            "parameters": {
                "type": "object",
                "properties": {
                    "service_id": {
                        "type": "integer",
                        "description": "Which service; may be left out when the business has one.",
                    },
                    "date": {
                        "type": "string",
                        "description": "A local date YYYY-MM-DD to search; left out: the next free times.",
                    },
                },
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book",
            "description": "Book a free time for the customer of this conversation (their name and "
            "number are known). Only after the customer chose the time.",
            "parameters": {
                "type": "object",
                "properties": {"service_id": {"type": "integer"}, "start": _START},
                "required": ["start"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "reschedule",
            "description": "Move one of the customer's bookings to another free time.",
            "parameters": {
                "type": "object",
                "properties": {"booking_id": {"type": "integer"}, "start": _START},
                "required": ["booking_id", "start"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel",
            "description": "Cancel one of the customer's bookings, once they confirmed they want to.",
            "parameters": {
                "type": "object",
                "properties": {"booking_id": {"type": "integer"}},
                "required": ["booking_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "my_bookings",
            "description": "The customer's upcoming bookings.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]

PROMPT = (
    "# Appointments\n"
    "You can book, move and cancel appointments with the tools. Offer only times find_slots returned, "
    "and book only a time the customer chose. When a tool result has a `confirmation`, tell it to the "
    "customer as it is (it has the date, time and link). When a tool result has ok=false, say its "
    "`message`: never claim a booking, move or cancellation the tools did not confirm."
)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    result: dict[str, Any]

    @property
    def acted(self) -> bool:
        """A booking was made, moved or cancelled."""
        return self.call.name in ACTIONS and bool(self.result.get("ok"))


class BadArguments(ValueError):
    pass


def _int(args: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = args.get(name)
    if value is None or value == "":
        if required:
            raise BadArguments(f"`{name}` is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadArguments(f"`{name}` must be an integer.")
    try:
        return int(value)
    except ValueError:
        raise BadArguments(f"`{name}` must be an integer.") from None


def _start(args: dict[str, Any], zone: Any) -> dt.datetime:
    value = args.get("start")
    if not isinstance(value, str) or not value.strip():
        raise BadArguments("`start` is required: one of the starts find_slots returned.")
    try:
        start = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadArguments("`start` must be an ISO 8601 date and time, as find_slots returned it.") from None
    # A local time without offset is the business's local time, as the customer reads it.
    return start if start.tzinfo else start.replace(tzinfo=zone)


def _date(args: dict[str, Any]) -> dt.date | None:
    value = args.get("date")
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadArguments("`date` must be YYYY-MM-DD.")
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise BadArguments("`date` must be YYYY-MM-DD.") from None


def run(call: ToolCall, customer: Customer) -> ToolOutcome:
    """Run one tool call; bad arguments and unknown tools give an error result, never an exception
    (database errors do escape: the reply task retries the turn, and the same key books once)."""
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        args = None
    if not isinstance(args, dict):
        return ToolOutcome(call, {"ok": False, "error": "The arguments must be a JSON object."})
    zone = chat.zone_of(customer.workspace_id)
    try:
        if call.name == "find_slots":
            result = chat.find_slots(customer, service_id=_int(args, "service_id"), day=_date(args))
        elif call.name == "book":
            result = chat.book(customer, service_id=_int(args, "service_id"), start=_start(args, zone))
        elif call.name == "reschedule":
            booking_id = _int(args, "booking_id", required=True)
            assert booking_id is not None  # noqa: S101 - required above; for the type checker
            result = chat.reschedule(customer, booking_id=booking_id, start=_start(args, zone))
        elif call.name == "cancel":
            booking_id = _int(args, "booking_id", required=True)
            assert booking_id is not None  # noqa: S101 - required above; for the type checker
            result = chat.cancel(customer, booking_id=booking_id)
        elif call.name == "my_bookings":
            result = chat.my_bookings(customer)
        else:
            result = {"ok": False, "error": f"There is no tool named {call.name[:60]!r}."}
    except BadArguments as exc:
        result = {"ok": False, "error": str(exc)}
    logger.info("tool %s for workspace %s: ok=%s", call.name[:60], customer.workspace_id, result.get("ok"))
    return ToolOutcome(call, result)


def fallback_text(outcomes: list[ToolOutcome], *, language: str) -> str:
    """What to say when the model gave no final text after tools ran (budget or rounds spent): the
    confirmations of what was done, else an honest hand-off; never an invented success."""
    said = [str(o.result["confirmation"]) for o in outcomes if o.acted and o.result.get("confirmation")]
    if said:
        return "\n".join(said)
    failed = [
        str(o.result["message"]) for o in outcomes if not o.result.get("ok") and o.result.get("message")
    ]
    return failed[-1] if failed else ""
