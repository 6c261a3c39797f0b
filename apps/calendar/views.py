"""The one public page of the calendar: a booking's .ics behind a signed, expiring link (no login)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from apps.calendar import ics
from chatbot.exceptions import NotFound


@require_GET
def booking_ics(request: HttpRequest, token: str) -> HttpResponse:
    try:
        booking = ics.booking_from_token(token)
    except NotFound:
        return HttpResponse("This link is not valid or has expired.\n", status=404, content_type="text/plain")
    response = HttpResponse(ics.booking_ics(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="booking-{booking.pk}.ics"'
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
