"""Two customers take the same time at once, on real PostgreSQL: one gets it, the other the next slot."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.assistant.models import BusinessProfile
from apps.calendar import services
from apps.calendar.errors import SlotTaken
from apps.calendar.models import Booking, BookingSlot
from apps.calendar.tests.conftest import connect
from apps.calendar.tests.factories import ServiceFactory

NOW = dt.datetime(2030, 3, 1, 8, 0, tzinfo=dt.UTC)
MONDAY_10 = dt.datetime(2030, 3, 4, 10, 0, tzinfo=dt.UTC)


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_booking_one_wins_the_other_gets_the_next_slot(
    postgres, google_standin, monkeypatch
):
    workspace = WorkspaceFactory()
    conn = connect((workspace, UserFactory()), "google")
    BusinessProfile.objects.create(
        workspace=workspace, opening_hours={"mon": [["09:00", "13:00"]]}, timezone="UTC"
    )
    service = ServiceFactory(workspace=workspace, connection=conn, duration_minutes=30)
    # Both customers pass the availability check before either claims: the database must decide.
    barrier = threading.Barrier(2, timeout=10)
    claim = services._claim

    def claim_together(*args, **kwargs):
        barrier.wait()
        return claim(*args, **kwargs)

    monkeypatch.setattr(services, "_claim", claim_together)
    outcomes: dict[str, object] = {}

    def customer(key: str) -> None:
        try:
            outcomes[key] = services.booking_create(
                service=service, start=MONDAY_10, idempotency_key=key, now=NOW
            )
        except SlotTaken as exc:
            outcomes[key] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=customer, args=(key,)) for key in ("ana", "luis")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    booked = [o for o in outcomes.values() if isinstance(o, Booking)]
    refused = [o for o in outcomes.values() if isinstance(o, SlotTaken)]
    assert len(booked) == 1 and len(refused) == 1, outcomes
    assert booked[0].status == Booking.Status.CONFIRMED
    assert refused[0].next_start == MONDAY_10 + dt.timedelta(minutes=30)
    assert Booking.objects.count() == 1
    assert BookingSlot.objects.count() == 6
    assert len(google_standin.events()) == 1
