"""How provider failures reach the services: outages are transient (booking pending), refused grants
mark the connection, gone events count as deleted."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.assistant.models import BusinessProfile
from apps.calendar import services
from apps.calendar.errors import CalendarUnavailable, ReconnectNeeded
from apps.calendar.models import Booking, Connection
from apps.calendar.tests.conftest import approve, connect
from apps.calendar.tests.factories import ServiceFactory
from chatbot.exceptions import ValidationFailed

NOW = dt.datetime(2030, 3, 1, 8, 0, tzinfo=dt.UTC)
MONDAY_10 = dt.datetime(2030, 3, 4, 10, 0, tzinfo=dt.UTC)


def _service(workspace, connection):
    BusinessProfile.objects.update_or_create(
        workspace=workspace, defaults={"opening_hours": {"mon": [["09:00", "13:00"]]}, "timezone": "UTC"}
    )
    return ServiceFactory(workspace=workspace, connection=connection)


def test_an_outage_of_googles_token_endpoint_at_connect_is_transient(staff, google_standin):
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="s",
        provider="google",
        redirect_uri="https://a/cb",
    )
    params = approve(url)
    google_standin.outage(1, status=503, prefix="/token")

    with pytest.raises(CalendarUnavailable):
        services.connection_connect_finish(
            workspace_id=workspace.pk, user_id=user.pk, session_key="s", params=params
        )
    assert not Connection.objects.exists()


def test_a_wrong_client_secret_is_a_refused_authorization(staff, google_standin, settings):
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="s",
        provider="google",
        redirect_uri="https://a/cb",
    )
    settings.GOOGLE_OAUTH_CLIENT_SECRET = "wrong"

    with pytest.raises(ValidationFailed) as caught:
        services.connection_connect_finish(
            workspace_id=workspace.pk, user_id=user.pk, session_key="s", params=approve(url)
        )
    assert caught.value.code == "calendar_authorization_refused"


def test_a_deleted_google_event_counts_as_cancelled(staff, google_standin):
    service = _service(staff[0], connect(staff, "google"))
    booking = services.booking_create(service=service, start=MONDAY_10, idempotency_key="k", now=NOW)
    google_standin.calendars["primary"].pop(booking.external_event_id)
    google_standin.deleted.add(booking.external_event_id)

    services.booking_cancel(booking=booking)

    assert Booking.objects.get().status == Booking.Status.CANCELLED


def test_a_graph_outage_at_booking_time_books_pending(staff, microsoft_standin):
    service = _service(staff[0], connect(staff, "microsoft", microsoft_standin.ca_file))
    microsoft_standin.outage(5, status=503, prefix="/v1.0/")

    booking = services.booking_create(service=service, start=MONDAY_10, idempotency_key="k", now=NOW)

    assert booking.status == Booking.Status.PENDING
    assert microsoft_standin.events() == []
    assert Connection.objects.get().status == Connection.Status.CONNECTED


def test_graph_refusing_the_token_marks_reconnect_needed(staff, microsoft_standin):
    conn = connect(staff, "microsoft", microsoft_standin.ca_file)
    microsoft_standin.access_tokens.clear()  # Graph no longer knows the cached access token

    with pytest.raises(ReconnectNeeded):
        services.connection_busy(connection=conn, start=MONDAY_10, end=MONDAY_10 + dt.timedelta(hours=1))

    conn.refresh_from_db()
    assert conn.status == Connection.Status.RECONNECT_NEEDED


def test_outlook_slots_skip_busy_times_and_cancel_survives_a_gone_event(staff, microsoft_standin):
    service = _service(staff[0], connect(staff, "microsoft", microsoft_standin.ca_file))
    microsoft_standin.add_busy(MONDAY_10, MONDAY_10 + dt.timedelta(hours=2))

    slots = services.service_slots(
        service=service, start=MONDAY_10.replace(hour=0), end=MONDAY_10.replace(hour=23), now=NOW
    )
    assert [s.strftime("%H:%M") for s in slots] == ["09:00", "09:15", "09:30", "12:00", "12:15", "12:30"]

    booking = services.booking_create(service=service, start=slots[0], idempotency_key="k", now=NOW)
    microsoft_standin.events_by_id[booking.external_event_id]["_deleted"] = True
    services.booking_cancel(booking=booking)
    assert Booking.objects.get().status == Booking.Status.CANCELLED


def test_microsoft_disconnect_forgets_the_cache(staff, microsoft_standin):
    conn = connect(staff, "microsoft", microsoft_standin.ca_file)

    services.connection_disconnect(connection=conn, actor_id=None)

    conn.refresh_from_db()
    assert (conn.status, conn.token, conn.account_key) == (Connection.Status.DISCONNECTED, "", "")
