"""The calendar page: connect a Google calendar through the stand-in with the browser's session, services,
bookings, in English and Spanish."""

from __future__ import annotations

import datetime as dt

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
