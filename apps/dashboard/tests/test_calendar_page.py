"""The calendar page: connect a Google calendar through the stand-in with the browser's session, services,
bookings, in English and Spanish."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from apps.calendar.models import Booking, Connection, Service
from apps.calendar.tests.conftest import approve
from apps.calendar.tests.factories import ServiceFactory


@pytest.fixture
def admin_client(client, db):
    membership = MembershipFactory(role=Role.ADMIN)
    client.force_login(membership.user)
    return client, membership


def test_connect_google_from_the_page_and_come_back_connected(admin_client, google_standin):
    client, membership = admin_client

    started = client.post("/calendar/connect/google/")
    assert started.status_code == 302
    assert started["Location"].startswith(f"{google_standin.url}/o/oauth2/v2/auth?")
    params = approve(started["Location"])
    back = client.get("/calendar/callback", params, follow=True)

    assert back.status_code == 200
    assert b"Calendar connected: owner@example.com." in back.content
    assert Connection.objects.get(workspace=membership.workspace).status == "connected"
    assert back.content.count(b'data-testid="calendar-connection"') == 1
    # The consent page is another origin: the page's policy lets its forms be redirected there.
    assert f"form-action 'self' {google_standin.url}" in back["Content-Security-Policy"]


def test_a_callback_in_another_browser_session_connects_nothing(admin_client, google_standin, client):
    first, membership = admin_client
    url = first.post("/calendar/connect/google/")["Location"]
    from django.test import Client

    other = Client()
    other.force_login(membership.user)

    page = other.get("/calendar/callback", approve(url), follow=True)

    assert b"started by another session" in page.content
    assert not Connection.objects.exists()


def test_add_a_service_and_cancel_a_booking_in_spanish(admin_client):
    client, membership = admin_client
    client.cookies["django_language"] = "es"

    saved = client.post(
        "/calendar/",
        {
            "name": "Corte de pelo",
            "duration_minutes": 30,
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 10,
            "min_notice_minutes": 60,
            "horizon_days": 30,
            "connection": "",
        },
        follow=True,
    )
    assert "Servicio guardado." in saved.content.decode()
    service = Service.objects.get(workspace=membership.workspace)
    assert (service.duration_minutes, service.buffer_after_minutes, service.connection_id) == (30, 10, None)

    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(days=1)
    booking = Booking.objects.create(
        workspace=membership.workspace,
        service=service,
        start=start,
        end=start + dt.timedelta(minutes=30),
        status=Booking.Status.PENDING,
        calendar_key=service.calendar_key,
        idempotency_key="page",
        customer_name="Ana",
    )
    page = client.get("/calendar/").content.decode()
    assert "Próximas reservas" in page and "Esperando la confirmación de una persona" in page
    assert "Conectar un calendario de Google" in page

    client.post(f"/calendar/bookings/{booking.pk}/cancel/")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_an_off_grid_duration_is_refused_on_the_form(admin_client):
    client, membership = admin_client
    response = client.post(
        "/calendar/",
        {
            "name": "Raro",
            "duration_minutes": 33,
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "min_notice_minutes": 0,
            "horizon_days": 30,
        },
    )
    assert response.status_code == 200
    assert b"Must be a multiple of 5 minutes." in response.content
    assert not Service.objects.exists()


def test_a_viewer_sees_no_connect_or_cancel_buttons(client, db):
    membership = MembershipFactory(role=Role.VIEWER)
    client.force_login(membership.user)
    ServiceFactory(workspace=membership.workspace)

    page = client.get("/calendar/").content

    assert b"calendar-connect-google" not in page and b"service-form" not in page
    assert b'data-testid="service-row"' in page


@pytest.fixture
def agent_client(client, db):
    from apps.assistant.models import BusinessProfile

    membership = MembershipFactory(role=Role.AGENT)
    BusinessProfile.objects.create(
        workspace=membership.workspace,
        timezone="Europe/Madrid",
        opening_hours={d: [["09:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
    client.force_login(membership.user)
    return client, membership


def madrid_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Madrid")).date()


def _book(client, service, day, time, key="staff-1", name="Marta (teléfono)"):
    return client.post(
        "/calendar/bookings/new/",
        {"service": service.pk, "date": day, "time": time, "customer_name": name, "customer_phone": "911000000",
         "idempotency_key": key},
        follow=True,
    )  # fmt: skip


def test_staff_book_by_hand_at_the_local_time_once_and_a_taken_time_is_refused(agent_client):
    client, membership = agent_client
    service = ServiceFactory(workspace=membership.workspace, name="Corte", duration_minutes=30)
    day = (madrid_today() + dt.timedelta(days=3)).isoformat()

    page = _book(client, service, day, "10:00")
    _book(client, service, day, "10:00")  # a double click: the same form, the same key

    booking = Booking.objects.get()
    local = booking.start.astimezone(
        dt.timezone(booking.start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Madrid")).utcoffset())
    )
    assert (local.strftime("%Y-%m-%d %H:%M"), booking.customer_name, booking.status) == (
        f"{day} 10:00", "Marta (teléfono)", Booking.Status.PENDING,
    )  # fmt: skip
    assert f"Booked: Corte on {day} 10:00.".encode() in page.content

    taken = _book(client, service, day, "10:15", key="staff-2")
    assert Booking.objects.count() == 1
    assert f"That time is not free. The next free time is {day} 10:30.".encode() in taken.content


def test_a_viewer_cannot_book_by_hand(client, db):
    membership = MembershipFactory(role=Role.VIEWER)
    client.force_login(membership.user)
    service = ServiceFactory(workspace=membership.workspace)
    response = _book(client, service, "2030-01-07", "10:00")
    assert response.status_code == 403
    assert not Booking.objects.exists()


def test_the_week_view_shows_each_local_day_and_moves_by_week(agent_client):
    client, membership = agent_client
    service = ServiceFactory(workspace=membership.workspace, name="Tinte")
    day = madrid_today() + dt.timedelta(days=7)  # always in next week
    _book(client, service, day.isoformat(), "18:30", name="Rosa")

    this_week = client.get("/calendar/")
    next_week = client.get("/calendar/?week=1")
    in_week = next_week

    assert this_week.content.count(b'data-testid="week-day"') == 7
    assert in_week.content.count(b'data-testid="week-booking"') == 1
    assert f'data-date="{day.isoformat()}"'.encode() in in_week.content
    assert b"18:30" in in_week.content and b"Rosa" in in_week.content
    assert client.get("/calendar/?week=nonsense").status_code == 200


def test_the_booking_form_in_spanish(agent_client):
    client, membership = agent_client
    ServiceFactory(workspace=membership.workspace)
    page = client.get("/calendar/", HTTP_ACCEPT_LANGUAGE="es")
    assert b"Nueva reserva" in page.content
    assert b"Semana siguiente" in page.content


def test_an_admin_edits_a_service_and_its_reminders_in_spanish(admin_client):
    client, membership = admin_client
    service = ServiceFactory(workspace=membership.workspace, name="Corte", duration_minutes=30)

    form = client.get(f"/calendar/services/{service.pk}/", HTTP_ACCEPT_LANGUAGE="es")
    assert form.status_code == 200
    assert b"Recordatorios (horas antes)" in form.content
    assert b'value="24, 2"' in form.content

    fields = {"name": "Corte largo", "duration_minutes": 45, "buffer_before_minutes": 0, "buffer_after_minutes": 5,
              "min_notice_minutes": 60, "horizon_days": 30, "reminder_hours": "48, 3", "reminder_template": "recordatorio"}  # fmt: skip
    saved = client.post(f"/calendar/services/{service.pk}/", fields)
    assert saved.status_code == 302
    service.refresh_from_db()
    assert (service.name, service.duration_minutes, service.reminder_hours, service.reminder_template, service.is_active) == (
        "Corte largo", 45, [48, 3], "recordatorio", False,
    )  # fmt: skip

    refused = client.post(
        f"/calendar/services/{service.pk}/", {**fields, "reminder_hours": "24, 24", "is_active": "on"}
    )
    assert refused.status_code == 200
    service.refresh_from_db()
    assert (service.reminder_hours, service.is_active) == ([48, 3], False)  # nothing saved
