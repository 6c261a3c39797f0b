"""Booking by chat: what the assistant's tools (and the offline flow) call, with plain data in and out.

Every function takes a `Customer` built by the caller from the conversation's contact (never from
what a model wrote) and returns a JSON-able dict. A result with `"ok": False` carries `message`, an
honest sentence in the customer's language ("a person will confirm"), and is never a made-up success.
Bookings are only ever read or changed for the same contact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from apps.calendar import ics, selectors, services
from apps.calendar.errors import SlotTaken
from apps.calendar.models import Booking, Service
from chatbot.exceptions import DomainError, ValidationFailed

logger = logging.getLogger(__name__)

MAX_SLOTS = 5  # offered in one answer: enough to choose, short enough for WhatsApp
SEARCH_DAYS = 14  # how far a slot search looks when no date is given


@dataclass(frozen=True)
class Customer:
    """Who is booking: from the conversation's contact, never from a model."""

    workspace_id: int
    contact_id: int | None
    name: str
    phone: str
    language: str  # "es" / "en"
    turn_key: str  # the customer turn being answered: with the arguments, the idempotency key


def available(*, workspace_id: int) -> bool:
    """Whether bookings can be offered by chat: the workspace has an active service."""
    return Service.objects.filter(workspace_id=workspace_id, is_active=True).exists()


def zone_of(workspace_id: int) -> ZoneInfo:
    """The business's time zone, in which customers read and write times."""
    return selectors.business_hours(workspace_id)[1]


def when_text(start: dt.datetime, *, zone: ZoneInfo, language: str) -> str:
    """A start as the customer reads it, in the business's time zone: "jueves 10 de diciembre, 10:00"."""
    local = start.astimezone(zone)
    with translation.override(language if language in ("es", "en") else "es"):
        day = formats.date_format(local, _("l, j F"))
    if language != "en":  # Spanish writes day and month names in lower case mid-sentence
        day = day.lower()
    return f"{day}, {local:%H:%M}"


def _failure(message: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "message": message, **extra}


def _person_will_confirm(customer: Customer) -> dict[str, Any]:
    with translation.override(customer.language):
        return _failure(
            _("I could not complete that now. A person from the team will confirm it with you soon."),
            handoff=True,
        )


def _key(customer: Customer, action: str, **args: Any) -> str:
    # One per turn and target, whatever time the model picks: a turn answered twice (a retried task,
    # another provider) finds the booking made the first time instead of making a second one.
    material = json.dumps([customer.turn_key, customer.contact_id, action, args], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:48]


def _services(workspace_id: int) -> list[Service]:
    return list(Service.objects.filter(workspace_id=workspace_id, is_active=True).order_by("name"))


def service_list(customer: Customer) -> list[dict[str, Any]]:
    return [
        {
            "service_id": s.pk,
            "name": s.name,
            "duration_minutes": s.duration_minutes,
            "price": str(s.price) if s.price is not None else None,
        }
        for s in _services(customer.workspace_id)
    ]


def _service(customer: Customer, service_id: int | None) -> Service | None:
    services_ = _services(customer.workspace_id)
    if service_id is None:
        return services_[0] if len(services_) == 1 else None
    return next((s for s in services_ if s.pk == service_id), None)


def _slot(start: dt.datetime, zone: ZoneInfo, language: str) -> dict[str, str]:
    return {
        "start": start.astimezone(zone).isoformat(),
        "when": when_text(start, zone=zone, language=language),
    }


def find_slots(
    customer: Customer,
    *,
    service_id: int | None = None,
    day: dt.date | None = None,
    after: dt.datetime | None = None,
    limit: int = MAX_SLOTS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Free starts of a service: on a local `day` when given, else from `after` (or now) on."""
    now = now or timezone.now()
    service = _service(customer, service_id)
    if service is None:
        with translation.override(customer.language):
            return _failure(_("Which service would you like to book?"), services=service_list(customer))
    zone = zone_of(customer.workspace_id)
    if day is not None:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
        end = start + dt.timedelta(days=1)
    else:
        start = max(after or now, now)
        end = start + dt.timedelta(days=SEARCH_DAYS)
    try:
        found = services.service_slots(
            service=service, start=start, end=end, now=now, limit=max(1, min(limit, MAX_SLOTS))
        )
    except DomainError:
        logger.warning("slot search failed for service %s", service.pk, exc_info=True)
        return _person_will_confirm(customer)
    return {
        "ok": True,
        "service_id": service.pk,
        "service": service.name,
        "time_zone": str(zone),
        "slots": [_slot(s, zone, customer.language) for s in found],
    }


def _booking_view(booking: Booking, customer: Customer) -> dict[str, Any]:
    zone = zone_of(customer.workspace_id)
    return {
        "booking_id": booking.pk,
        "service": booking.service.name,
        "start": booking.start.astimezone(zone).isoformat(),
        "when": when_text(booking.start, zone=zone, language=customer.language),
        "status": booking.status,
    }


def confirmation_text(booking: Booking, *, language: str, link: str = "") -> str:
    """What the customer is told after a booking or a move, in their language and the business's time."""
    zone = zone_of(booking.workspace_id)
    when = when_text(booking.start, zone=zone, language=language)
    with translation.override(language):
        if booking.status == Booking.Status.CONFIRMED and booking.rescheduled_from_id:
            text = _("Changed: %(service)s, now on %(when)s.") % {
                "service": booking.service.name,
                "when": when,
            }
        elif booking.status == Booking.Status.CONFIRMED:
            text = _("Booked: %(service)s on %(when)s.") % {"service": booking.service.name, "when": when}
        else:
            text = _(
                "Noted: %(service)s on %(when)s. A person from the team will confirm it with you soon."
            ) % {"service": booking.service.name, "when": when}
        if link:
            text += " " + _("Add it to your calendar: %(link)s") % {"link": link}
    return str(text)


def _own_booking(customer: Customer, booking_id: int) -> Booking | None:
    if customer.contact_id is None:
        return None
    return (
        Booking.objects.select_related("service", "connection")
        .filter(
            workspace_id=customer.workspace_id,
            contact_id=customer.contact_id,
            pk=booking_id,
            status__in=Booking.ACTIVE,
        )
        .first()
    )


def _taken(customer: Customer, exc: SlotTaken) -> dict[str, Any]:
    zone = zone_of(customer.workspace_id)
    with translation.override(customer.language):
        if exc.next_start is None:
            return _failure(_("That time is no longer free, and there is no other free time soon."))
        return _failure(
            _("That time is no longer free. The next free time is %(when)s.")
            % {"when": when_text(exc.next_start, zone=zone, language=customer.language)},
            next_slot=_slot(exc.next_start, zone, customer.language),
        )


def _done(booking: Booking, customer: Customer) -> dict[str, Any]:
    link = ics.booking_link(booking) if booking.status != Booking.Status.CANCELLED else ""
    return {
        "ok": True,
        **_booking_view(booking, customer),
        "confirmation": confirmation_text(booking, language=customer.language, link=link),
    }


def book(
    customer: Customer,
    *,
    service_id: int | None,
    start: dt.datetime,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Book `start` for this customer; availability is checked again by booking_create."""
    service = _service(customer, service_id)
    if service is None:
        with translation.override(customer.language):
            return _failure(_("Which service would you like to book?"), services=service_list(customer))
    try:
        booking = services.booking_create(
            service=service,
            start=start,
            idempotency_key=_key(customer, "book", service=service.pk),
            contact_id=customer.contact_id,
            customer_name=customer.name,
            customer_phone=customer.phone,
            now=now,
        )
    except SlotTaken as exc:
        return _taken(customer, exc)
    except DomainError as exc:
        if isinstance(exc, ValidationFailed):  # a start off the grid, or the service was switched off
            with translation.override(customer.language):
                return _failure(_("That time cannot be booked. Please choose one of the free times."))
        logger.warning("booking by chat failed: %s", exc)
        return _person_will_confirm(customer)
    return _done(booking, customer)


def reschedule(
    customer: Customer,
    *,
    booking_id: int,
    start: dt.datetime,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    booking = _own_booking(customer, booking_id)
    if booking is None:
        with translation.override(customer.language):
            return _failure(
                _("I cannot find that booking of yours."), bookings=my_bookings(customer)["bookings"]
            )
    try:
        moved = services.booking_reschedule(
            booking=booking,
            start=start,
            idempotency_key=_key(customer, "move", booking=booking.pk),
            now=now,
        )
    except SlotTaken as exc:
        return _taken(customer, exc)
    except DomainError as exc:
        logger.warning("move by chat failed: %s", exc)
        return _person_will_confirm(customer)
    return _done(moved, customer)


def cancel(customer: Customer, *, booking_id: int) -> dict[str, Any]:
    booking = _own_booking(customer, booking_id)
    if booking is None:
        with translation.override(customer.language):
            return _failure(
                _("I cannot find that booking of yours."), bookings=my_bookings(customer)["bookings"]
            )
    try:
        services.booking_cancel(booking=booking)
    except DomainError as exc:
        logger.warning("cancel by chat failed: %s", exc)
        return _person_will_confirm(customer)
    view = _booking_view(booking, customer)
    with translation.override(customer.language):
        text = _("Cancelled: %(service)s on %(when)s.") % {"service": view["service"], "when": view["when"]}
    return {"ok": True, **view, "status": Booking.Status.CANCELLED, "confirmation": str(text)}


def my_bookings(customer: Customer, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The customer's active bookings from now on (nothing of other customers)."""
    if customer.contact_id is None:
        return {"ok": True, "bookings": []}
    rows = (
        Booking.objects.select_related("service")
        .filter(
            workspace_id=customer.workspace_id,
            contact_id=customer.contact_id,
            status__in=Booking.ACTIVE,
            end__gt=now or timezone.now(),
        )
        .order_by("start")[:10]
    )
    return {"ok": True, "bookings": [_booking_view(b, customer) for b in rows]}


def reminded_booking(customer: Customer, *, now: dt.datetime | None = None) -> Booking | None:
    """The booking a recent reminder was about: what a bare "cancel" / "change" refers to."""
    if customer.contact_id is None:
        return None
    return selectors.booking_reminded(
        workspace_id=customer.workspace_id, contact_id=customer.contact_id, now=now or timezone.now()
    )
