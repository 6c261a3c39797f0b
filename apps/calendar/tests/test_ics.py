"""The .ics link in a confirmation: signed, unguessable, no login, expiring."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import signing

from apps.calendar import chat, ics, services
from apps.calendar.models import Booking
from apps.calendar.tests.factories import ServiceFactory
from chatbot.exceptions import NotFound

pytestmark = pytest.mark.django_db
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def booking(workspace, settings):
    from apps.assistant.models import BusinessProfile

    settings.PUBLIC_URL = "https://chat.example.com"
    BusinessProfile.objects.create(
        workspace=workspace, name="Peluquería Sol", timezone="Europe/Madrid", opening_hours=EVERY_DAY
    )
    service = ServiceFactory(workspace=workspace, name="Corte, lavado; peinado", duration_minutes=45)
    start = dt.datetime(2027, 3, 28, 9, 0, tzinfo=dt.UTC)  # the morning Madrid moves to summer time
    return services.booking_create(
        service=service, start=start, idempotency_key="k1", now=dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    )


def test_the_link_downloads_the_booking_without_a_login(booking, client):
    link = ics.booking_link(booking)
    assert link.startswith("https://chat.example.com/booking/") and link.endswith(".ics")

    response = client.get(link.removeprefix("https://chat.example.com"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    body = response.content.decode()
    assert "DTSTART:20270328T090000Z\r\nDTEND:20270328T094500Z\r\n" in body
    assert "SUMMARY:Corte\\, lavado\\; peinado (Peluquería Sol)\r\n" in body
    assert "STATUS:TENTATIVE" in body  # no calendar connected: pending until a person confirms
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")


def test_a_forged_altered_or_expired_token_is_not_found(booking, client):
    token = ics.booking_token(booking)
    forged = signing.dumps({"b": booking.pk, "x": 4102444800}, salt="another-salt", compress=True)
    for bad in (token[:-2] + "xx", forged, "123", str(booking.pk)):
        assert client.get(f"/booking/{bad}.ics").status_code == 404
    after = booking.end + dt.timedelta(days=8)
    with pytest.raises(NotFound):
        ics.booking_from_token(token, now=after)
    assert ics.booking_from_token(token, now=booking.end + dt.timedelta(days=6)) == booking


def test_the_confirmation_carries_the_link_in_the_customers_language(booking):
    link = ics.booking_link(booking)
    text = chat.confirmation_text(booking, language="en", link=link)
    assert text == (
        "Noted: Corte, lavado; peinado on Sunday, 28 March, 11:00. A person from the team will confirm it "
        f"with you soon. Add it to your calendar: {link}"
    )


def test_no_public_url_no_link(booking, settings):
    settings.PUBLIC_URL = ""
    assert ics.booking_link(booking) == ""


def test_a_cancelled_booking_says_so_in_its_ics(booking):
    services.booking_cancel(booking=booking)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert "STATUS:CANCELLED" in ics.booking_ics(booking)
