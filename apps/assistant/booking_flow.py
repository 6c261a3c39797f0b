"""The deterministic booking flow (no model needed): a customer asks for an appointment, gets up to 3
free times as a WhatsApp list message, and picks one; the pick books it. A time taken meanwhile is
answered with the next free ones. With several services the list first asks which one.

A list row's id says what picking it does: `cal:svc:<service id>` or `cal:book:<service id>:<unix start>`;
it comes back in the customer's `list_reply` (ReplyRequest.choice) and is checked like any input.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.utils import formats, translation
from django.utils.translation import gettext as _

from apps.assistant.language import fold
from apps.calendar import chat

OFFERED = 3
ROW_TITLE_MAX = 24  # WhatsApp's limits for list rows and the list button
ROW_DESCRIPTION_MAX = 72
BUTTON_MAX = 20
_ASKS = re.compile(
    r"\b(?:cita|citas|reservar|reserva|reservo|turno|hueco|appointment|appointments|book|booking)\b"
)
_CHOICE = re.compile(
    r"^cal:(?:svc:(?P<service>\d{1,12})|book:(?P<bservice>\d{1,12}):(?P<start>\d{9,11})"
    r"|move:(?P<booking>\d{1,12}):(?P<mstart>\d{9,11}))$"
)
# A reminder says "reply CANCEL / CHANGE": the whole message is one of these words.
CANCEL_WORDS = frozenset({"cancelar", "cancela", "cancel", "anular"})
CHANGE_WORDS = frozenset({"cambiar", "cambia", "change", "mover", "move"})


@dataclass(frozen=True)
class FlowReply:
    text: str
    interactive: dict[str, Any] | None = None  # a WhatsApp list, when times or services are offered
    handoff: bool = False


def wants_booking(question: str) -> bool:
    return bool(_ASKS.search(fold(question)))


def is_choice(choice: str) -> bool:
    return bool(_CHOICE.match(choice or ""))


def _short(start: dt.datetime, customer: chat.Customer) -> str:
    local = start.astimezone(chat.zone_of(customer.workspace_id))
    with translation.override(customer.language):
        day = formats.date_format(local, _("D j M"))
    day = day if customer.language == "en" else day.lower()
    return f"{day}, {local:%H:%M}"[:ROW_TITLE_MAX]


def _list(body: str, button: str, rows: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "type": "list",
        "body": {"text": body[:1024]},
        "action": {"button": button[:BUTTON_MAX], "sections": [{"title": button[:24], "rows": rows}]},
    }


def _offer_times(
    customer: chat.Customer, service_id: int | None, *, intro: str = "", moving: int | None = None
) -> FlowReply:
    found = chat.find_slots(customer, service_id=service_id, limit=OFFERED)
    if not found.get("ok"):
        services = found.get("services")
        if services:
            return _offer_services(customer, services)
        return FlowReply(str(found["message"]), handoff=bool(found.get("handoff")))
    slots = found["slots"][:OFFERED]
    with translation.override(customer.language):
        if not slots:
            return FlowReply(
                (intro + " " if intro else "")
                + _("There are no free times soon. A person from the team will help you find one."),
                handoff=True,
            )
        body = (intro + " " if intro else "") + _("These are the next free times for %(service)s:") % {
            "service": found["service"]
        }
        button = _("See times")
    rows = []
    for slot in slots:
        start = dt.datetime.fromisoformat(slot["start"])
        rows.append(
            {
                "id": f"cal:move:{moving}:{int(start.timestamp())}"
                if moving
                else f"cal:book:{found['service_id']}:{int(start.timestamp())}",
                "title": _short(start, customer),
                "description": str(found["service"])[:ROW_DESCRIPTION_MAX],
            }
        )
    return FlowReply(str(body), _list(str(body), str(button), rows))


def _offer_services(customer: chat.Customer, services: list[dict[str, Any]]) -> FlowReply:
    with translation.override(customer.language):
        body, button = _("Which service would you like to book?"), _("Services")
    rows = [
        {"id": f"cal:svc:{s['service_id']}", "title": str(s["name"])[:ROW_TITLE_MAX]} for s in services[:10]
    ]
    return FlowReply(str(body), _list(str(body), str(button), rows))


def start(customer: chat.Customer) -> FlowReply:
    """The customer asked for an appointment: the next free times (or the services to choose from)."""
    return _offer_times(customer, None)


def choose(customer: chat.Customer, choice: str) -> FlowReply:
    """The customer picked a row of one of our lists."""
    match = _CHOICE.match(choice)
    if match is None:
        return start(customer)
    if match["service"]:
        return _offer_times(customer, int(match["service"]))
    if match["booking"]:
        return _move(customer, int(match["booking"]), int(match["mstart"]))
    service_id = int(match["bservice"])
    when = dt.datetime.fromtimestamp(int(match["start"]), tz=dt.UTC)
    result = chat.book(customer, service_id=service_id, start=when)
    if result.get("ok"):
        return FlowReply(str(result["confirmation"]))
    if result.get("handoff"):
        return FlowReply(str(result["message"]), handoff=True)
    with translation.override(customer.language):
        taken = str(_("That time was just taken."))
    return _offer_times(customer, service_id, intro=taken)


def _move(customer: chat.Customer, booking_id: int, timestamp: int) -> FlowReply:
    result = chat.reschedule(
        customer, booking_id=booking_id, start=dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    )
    if result.get("ok"):
        return FlowReply(str(result["confirmation"]))
    booking = chat.reminded_booking(customer)
    if result.get("handoff") or booking is None or booking.pk != booking_id:
        return FlowReply(str(result["message"]), handoff=bool(result.get("handoff")))
    with translation.override(customer.language):
        taken = str(_("That time was just taken."))
    return _offer_times(customer, booking.service_id, intro=taken, moving=booking.pk)


def reminder_reply(customer: chat.Customer, question: str, *, lists: bool = True) -> FlowReply | None:
    """A bare "cancel" / "change" after a reminder: cancel that booking, or offer times to move it to
    (a list: not on a channel without lists). None when the message is not such a word, or no
    reminder was sent lately."""
    word = fold(question).strip(" .!?¡¿")
    if word not in CANCEL_WORDS | (CHANGE_WORDS if lists else frozenset()):
        return None
    booking = chat.reminded_booking(customer)
    if booking is None:
        return None
    if word in CANCEL_WORDS:
        result = chat.cancel(customer, booking_id=booking.pk)
        text = result.get("confirmation") or result.get("message")
        return FlowReply(str(text), handoff=bool(result.get("handoff")))
    return _offer_times(customer, booking.service_id, moving=booking.pk)
