"""The .ics of a booking, and the link to it sent to the customer.

The link needs no login: its token is the booking's id and an expiry, signed with the secret key
(django.core.signing), so it cannot be guessed or altered, and it stops working CALENDAR_ICS_LINK_DAYS
after the appointment ends. No PUBLIC_URL configured: no link (the confirmation goes without it).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from apps.calendar.models import Booking
from chatbot.exceptions import NotFound

_SALT = "calendar.booking-ics"


def booking_token(booking: Booking) -> str:
    expires = booking.end + dt.timedelta(days=settings.CALENDAR_ICS_LINK_DAYS)
    return str(signing.dumps({"b": booking.pk, "x": int(expires.timestamp())}, salt=_SALT, compress=True))


def booking_link(booking: Booking) -> str:
    """The absolute URL of the booking's .ics; "" when the platform's public URL is not set."""
    if not settings.PUBLIC_URL:
        return ""
    return f"{settings.PUBLIC_URL}{reverse('booking-ics', kwargs={'token': booking_token(booking)})}"


def booking_from_token(token: str, *, now: dt.datetime | None = None) -> Booking:
    """The booking a token names; NotFound for a forged, altered or expired one (all look alike)."""
    try:
        payload = signing.loads(token, salt=_SALT)
        booking_id, expires = int(payload["b"]), int(payload["x"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("No such booking.") from None
    if (now or timezone.now()).timestamp() > expires:
        raise NotFound("No such booking.")
    booking = Booking.objects.select_related("service", "workspace").filter(pk=booking_id).first()
    if booking is None:
        raise NotFound("No such booking.")
    return booking


def _text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r", "")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> list[str]:
    """Lines longer than 75 octets continue on the next one after a space (RFC 5545 3.1)."""
    out, current = [], ""
    for char in line:
        if len((current + char).encode()) > 75:
            out.append(current)
            current = " " + char
        else:
            current += char
    return [*out, current]


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def booking_ics(booking: Booking) -> str:
    """One VEVENT in UTC (every calendar app shows it in the reader's own zone)."""
    business = (
        getattr(getattr(booking.workspace, "business_profile", None), "name", "") or booking.workspace.name
    )
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//WhatsApp assistant//Bookings//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:booking-{booking.workspace_id}-{booking.idempotency_key}@whatsapp-assistant",
        f"DTSTAMP:{_utc(timezone.now())}",
        f"DTSTART:{_utc(booking.start)}",
        f"DTEND:{_utc(booking.end)}",
        f"SUMMARY:{_text(f'{booking.service.name} ({business})')}",
        f"STATUS:{'CANCELLED' if booking.status == Booking.Status.CANCELLED else 'CONFIRMED' if booking.status == Booking.Status.CONFIRMED else 'TENTATIVE'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(folded for line in lines for folded in _fold(line)) + "\r\n"
