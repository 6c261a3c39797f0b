"""The /api/calendar/ endpoints: the connect flow bound to the login session, services, slots, bookings."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from apps.accounts import services as account_services
from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory
from apps.assistant.models import BusinessProfile
from apps.calendar.models import Booking, Connection, Service
from apps.calendar.tests.conftest import approve
from apps.calendar.tests.factories import ServiceFactory

MADRID = ZoneInfo("Europe/Madrid")
HOURS = {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def _login(membership):
    pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
    return client


@pytest.fixture
def admin(db):
    return MembershipFactory(workspace=WorkspaceFactory(), role=Role.ADMIN)


def test_connect_google_through_the_api_and_never_show_the_token(admin, google_standin, settings):
    settings.CALENDAR_OAUTH_REDIRECT_URL = "https://app.example/calendar/callback"
    client = _login(admin)

    started = client.post("/api/calendar/connections/connect", {"provider": "google"}, format="json")
    assert started.status_code == 200, started.content
    url = started.json()["authorization_url"]
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == ["https://app.example/calendar/callback"]
    params = approve(url)
    finished = client.post("/api/calendar/connections/callback", params, format="json")

    assert finished.status_code == 200, finished.content
    assert finished.json()["status"] == "connected"
    listed = client.get("/api/calendar/connections/")
    body = listed.content.decode()
    assert listed.json()["count"] == 1
    assert "token" not in listed.json()["results"][0]
    assert next(iter(google_standin.grants)) not in body


def test_a_callback_from_another_login_of_the_same_user_is_refused(admin, google_standin):
    first, second = _login(admin), _login(admin)
    url = first.post("/api/calendar/connections/connect", {"provider": "google"}, format="json").json()[
        "authorization_url"
    ]

    response = second.post("/api/calendar/connections/callback", approve(url), format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "calendar_state_invalid"
    assert not Connection.objects.exists()


def test_an_unconfigured_provider_is_a_clear_400(admin, settings):
    settings.MICROSOFT_CLIENT_ID = ""
    response = _login(admin).post(
        "/api/calendar/connections/connect", {"provider": "microsoft"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "calendar_not_configured"


def _next_monday_at(hour: int, minute: int = 0) -> dt.datetime:
    """The coming Monday (at least a day away) at a Madrid wall-clock time, in UTC."""
    today = dt.datetime.now(MADRID).date()
    monday = today + dt.timedelta(days=7 - today.weekday())
    return dt.datetime.combine(monday, dt.time(hour, minute), tzinfo=MADRID).astimezone(dt.UTC)


def _z(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_services_slots_and_bookings(admin):
    BusinessProfile.objects.create(workspace=admin.workspace, opening_hours=HOURS, timezone="Europe/Madrid")
    client = _login(admin)
    nine = _next_monday_at(9)

    created = client.post(
        "/api/calendar/services/",
        {
            "name": "Corte",
            "duration_minutes": 30,
            "buffer_after_minutes": 10,
            "min_notice_minutes": 0,
            "price": 12.499,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["price"] == "12.50"
    service_id = created.json()["id"]
    bad = client.patch(f"/api/calendar/services/{service_id}/", {"duration_minutes": 33}, format="json")
    assert bad.status_code == 400

    slots = client.get(
        f"/api/calendar/services/{service_id}/slots", {"start": _z(_next_monday_at(0)), "days": 1}
    )
    assert slots.status_code == 200
    assert slots.json()["timezone"] == "Europe/Madrid"
    assert slots.json()["slots"][0] == nine.isoformat()  # 09:00 in Madrid

    body = {"service": service_id, "start": _z(nine), "idempotency_key": "a1", "customer_name": "Ana"}
    booked = client.post("/api/calendar/bookings/", body, format="json")
    assert booked.status_code == 201, booked.content
    assert booked.json()["status"] == "pending"  # no calendar: a person confirms
    clash = client.post("/api/calendar/bookings/", {**body, "idempotency_key": "a2"}, format="json")
    assert clash.status_code == 409
    assert clash.json()["error"]["details"]["next_start"] == _next_monday_at(9, 45).isoformat()

    booking_id = booked.json()["id"]
    moved = client.post(
        f"/api/calendar/bookings/{booking_id}/reschedule",
        {"start": _z(_next_monday_at(10)), "idempotency_key": "a1-move"},
        format="json",
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["rescheduled_from"] == booking_id
    cancelled = client.post(f"/api/calendar/bookings/{moved.json()['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert client.get("/api/calendar/bookings/", {"status": "cancelled"}).json()["count"] == 2


def test_booking_another_workspaces_service_is_404(admin):
    theirs = ServiceFactory(workspace=WorkspaceFactory())
    response = _login(admin).post(
        "/api/calendar/bookings/",
        {"service": theirs.pk, "start": "2030-03-04T08:00:00Z", "idempotency_key": "x"},
        format="json",
    )
    assert response.status_code == 404
    assert not Booking.objects.exists()


def test_a_service_cannot_use_another_workspaces_calendar(admin):
    from apps.calendar.tests.factories import ConnectionFactory

    theirs = ConnectionFactory(workspace=WorkspaceFactory())
    response = _login(admin).post(
        "/api/calendar/services/",
        {"name": "Corte", "duration_minutes": 30, "connection": theirs.pk},
        format="json",
    )
    assert response.status_code == 404
    assert not Service.objects.exists()


def test_reminder_settings_through_the_api(admin):
    client = _login(admin)
    made = client.post("/api/calendar/services/", {"name": "Corte", "duration_minutes": 30}, format="json")
    assert made.status_code == 201, made.content
    assert (made.json()["reminder_hours"], made.json()["reminder_template"]) == ([24, 2], "")

    changed = client.patch(
        f"/api/calendar/services/{made.json()['id']}/",
        {"reminder_hours": [48], "reminder_template": "recordatorio_cita"},
        format="json",
    )
    assert (changed.json()["reminder_hours"], changed.json()["reminder_template"]) == (
        [48],
        "recordatorio_cita",
    )

    for bad in ([0], [24, 24], [200], ["x"]):
        refused = client.patch(
            f"/api/calendar/services/{made.json()['id']}/", {"reminder_hours": bad}, format="json"
        )
        assert refused.status_code == 400, (bad, refused.content)
    assert client.get(f"/api/calendar/services/{made.json()['id']}/").json()["reminder_hours"] == [48]
