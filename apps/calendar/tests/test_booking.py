"""The booking service against the stand-ins: re-check, idempotent events, conflicts, fallbacks,
cancel and reschedule; the database's no-overlap rule."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant.models import BusinessProfile
from apps.calendar import selectors, services
from apps.calendar.errors import SlotTaken
from apps.calendar.models import Booking, BookingSlot, Connection
from apps.calendar.tests.conftest import connect
from apps.calendar.tests.factories import ServiceFactory
from chatbot.exceptions import NotFound, ValidationFailed

NOW = dt.datetime(2030, 3, 1, 8, 0, tzinfo=dt.UTC)  # a Friday
MONDAY_10 = dt.datetime(2030, 3, 4, 10, 0, tzinfo=dt.UTC)
HOURS = {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def _service(workspace, connection=None, **fields):
    BusinessProfile.objects.update_or_create(
        workspace=workspace, defaults={"opening_hours": HOURS, "timezone": "UTC"}
    )
    return ServiceFactory(workspace=workspace, connection=connection, **fields)


def _book(service, start=MONDAY_10, key="k1", **kwargs):
    return services.booking_create(
        service=service,
        start=start,
        idempotency_key=key,
        customer_name="Ana",
        customer_phone="+34600000001",
        now=NOW,
        **kwargs,
    )


@pytest.fixture
def google_service(staff, google_standin):
    conn = connect(staff, "google")
    return _service(staff[0], conn, buffer_after_minutes=10)


def test_booking_creates_the_event_at_google(google_service, google_standin):
    booking = _book(google_service)

    assert booking.status == Booking.Status.CONFIRMED
    events = google_standin.events()
    assert [e["id"] for e in events] == [booking.external_event_id]
    assert events[0]["start"]["dateTime"] == "2030-03-04T10:00:00Z"
    assert events[0]["end"]["dateTime"] == "2030-03-04T10:30:00Z"
    assert "Ana" in events[0]["summary"]
    # 30 minutes and a 10-minute buffer after: eight 5-minute slots.
    assert BookingSlot.objects.filter(booking=booking).count() == 8


def test_the_same_idempotency_key_books_once(google_service, google_standin):
    first = _book(google_service)
    again = _book(google_service)

    assert again.pk == first.pk
    assert len(google_standin.events()) == 1
    assert Booking.objects.count() == 1


def test_a_retried_insert_after_a_lost_answer_finds_its_own_event(google_service, google_standin):
    booking = _book(google_service)
    # The booking's row is gone but the event stayed (a crash between the two): Google says 409
    # for the same id, and the event is recognised as ours.
    from apps.calendar.google_calendar import GoogleCalendar
    from apps.calendar.providers import NewEvent

    client = GoogleCalendar(token=google_service.connection.token, calendar_id="primary")
    event = NewEvent(booking.start, booking.end, "x", "y", f"booking-{booking.workspace_id}-k1")
    assert client.event_create(event) == booking.external_event_id
    assert len(google_standin.events()) == 1


def test_a_time_busy_at_google_is_refused_with_the_next_free_slot(google_service, google_standin):
    google_standin.add_busy(MONDAY_10, MONDAY_10 + dt.timedelta(hours=1))

    with pytest.raises(SlotTaken) as caught:
        _book(google_service)

    assert caught.value.next_start == MONDAY_10 + dt.timedelta(hours=1)
    assert not Booking.objects.exists()
    assert google_standin.events() == []


def test_a_409_from_google_gives_the_slot_back(google_service, google_standin):
    google_standin.conflict_next()

    with pytest.raises(SlotTaken) as caught:
        _book(google_service)

    booking = Booking.objects.get()
    assert booking.status == Booking.Status.CANCELLED
    assert not BookingSlot.objects.exists()
    assert caught.value.next_start is not None
    assert google_standin.events() == []


def test_a_revoked_grant_books_pending_for_a_person_to_confirm(google_service, google_standin):
    google_standin.revoke_grants()

    booking = _book(google_service)

    assert booking.status == Booking.Status.PENDING
    assert booking.external_event_id == ""
    assert Connection.objects.get().status == Connection.Status.RECONNECT_NEEDED


def test_an_outage_at_booking_time_books_pending(google_service, google_standin):
    google_standin.outage(times=5, status=503, prefix="/calendar/")

    booking = _book(google_service)

    assert booking.status == Booking.Status.PENDING
    assert Connection.objects.get().status == Connection.Status.CONNECTED  # an outage is no revoked grant
    assert google_standin.events() == []


def test_cancel_deletes_the_event_and_frees_the_slot(google_service, google_standin):
    booking = _book(google_service)

    services.booking_cancel(booking=booking)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.cancelled_at is not None
    assert google_standin.events() == []
    assert _book(google_service, key="k2").status == Booking.Status.CONFIRMED  # the time is free again


def test_reschedule_by_a_quarter_hour_moves_the_event(google_service, google_standin):
    booking = _book(google_service)

    moved = services.booking_reschedule(
        booking=booking, start=MONDAY_10 + dt.timedelta(minutes=15), idempotency_key="k1-move", now=NOW
    )

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert moved.status == Booking.Status.CONFIRMED
    assert moved.rescheduled_from_id == booking.pk
    assert [e["start"]["dateTime"] for e in google_standin.events()] == ["2030-03-04T10:15:00Z"]


def test_reschedule_to_a_taken_time_leaves_the_booking_as_it_was(google_service, google_standin):
    booking = _book(google_service)
    other = _book(google_service, start=MONDAY_10 + dt.timedelta(hours=1), key="k2")

    with pytest.raises(SlotTaken):
        services.booking_reschedule(booking=booking, start=other.start, idempotency_key="k1-move", now=NOW)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert BookingSlot.objects.filter(booking=booking).count() == 8
    assert len(google_standin.events()) == 2


def test_microsoft_booking_uses_a_transaction_id_and_cancel_deletes(staff, microsoft_standin):
    conn = connect(staff, "microsoft", microsoft_standin.ca_file)
    service = _service(staff[0], conn)

    booking = _book(service)

    events = microsoft_standin.events()
    assert [e["id"] for e in events] == [booking.external_event_id]
    assert events[0]["transactionId"] == f"booking-{booking.workspace_id}-k1"
    services.booking_cancel(booking=booking)
    assert microsoft_standin.events() == []


def test_a_service_without_a_calendar_books_pending_and_still_never_overlaps(staff):
    service = _service(staff[0])

    booking = _book(service)
    assert booking.status == Booking.Status.PENDING
    with pytest.raises(SlotTaken) as caught:
        _book(service, start=MONDAY_10 + dt.timedelta(minutes=15), key="k2")
    assert caught.value.next_start == MONDAY_10 + dt.timedelta(minutes=30)


def test_the_database_refuses_overlapping_slots(staff):
    service = _service(staff[0])
    booking = _book(service)
    clash = Booking.objects.create(
        workspace=service.workspace,
        service=service,
        start=booking.start,
        end=booking.end,
        status=Booking.Status.PENDING,
        calendar_key=booking.calendar_key,
        idempotency_key="raw",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingSlot.objects.create(booking=clash, calendar_key=booking.calendar_key, start=booking.start)


def test_bad_starts_are_refused_clearly(staff):
    service = _service(staff[0])
    with pytest.raises(ValidationFailed):
        _book(service, start=dt.datetime(2030, 3, 4, 10, 0))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValidationFailed):
        _book(service, start=MONDAY_10 + dt.timedelta(minutes=2))
    with pytest.raises(ValidationFailed):
        _book(service, key="")
    with pytest.raises(SlotTaken):
        _book(service, start=dt.datetime(2030, 3, 4, 14, 0, tzinfo=dt.UTC))  # closed


def test_slots_come_from_hours_bookings_and_the_provider(google_service, google_standin):
    google_standin.add_busy(MONDAY_10 + dt.timedelta(hours=1), MONDAY_10 + dt.timedelta(hours=2))
    _book(google_service)

    slots = services.service_slots(
        service=google_service, start=MONDAY_10.replace(hour=0), end=MONDAY_10.replace(hour=23), now=NOW
    )

    hours = [s.strftime("%H:%M") for s in slots]
    # 10:00-10:40 booked (buffer included), 11:00-12:00 busy at Google; each candidate needs 40 minutes.
    assert hours == ["09:00", "09:15", "12:00", "12:15", "12:30"]


def test_tenants_never_see_each_others_bookings(staff):
    service = _service(staff[0])
    booking = _book(service)
    other = WorkspaceFactory()

    assert list(selectors.booking_list(workspace=other)) == []
    with pytest.raises(NotFound):
        selectors.booking_get(workspace=other, pk=booking.pk)
    with pytest.raises(NotFound):
        selectors.service_get(workspace=other, pk=service.pk)
    # Another tenant's calendar is another calendar: the same time is free there.
    assert _book(_service(other), key="k1").workspace_id == other.pk
