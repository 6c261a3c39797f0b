"""Booking by chat end to end with real processes, against each calendar stand-in (Google, and Outlook
through msal and Microsoft Graph): a signed webhook (live server) -> inbound -> the llm worker -> the LLM
stand-in's tool calls -> the event in the stand-in's calendar -> the confirmation sent to the Graph
stand-in; then "move it to tomorrow" moves the event, and a cancellation by chat takes it away."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.assistant.models import BusinessProfile
from apps.calendar import chat, services
from apps.calendar.models import Booking
from apps.calendar.tests.conftest import approve
from apps.calendar.tests.factories import ServiceFactory
from standins import google as google_standin_module
from standins import microsoft as microsoft_standin_module
from tests import test_pipeline_worker
from tests.test_pipeline_worker import APP_SECRET, bodies, make_channel, wait_for

worker = test_pipeline_worker.worker  # the same real worker process, with the environment below

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@dataclass
class Calendar:
    """One provider's stand-in, as the test reads it: the events in its calendar and the worker's settings."""

    provider: str
    standin: Any
    env: dict[str, str]
    ca: str | bool

    def events(self) -> list[tuple[dt.datetime, dt.datetime, str, str]]:
        """(start, end, title, id) of every event in the stand-in's calendar."""
        if self.provider == "google":
            parse, title = google_standin_module._parse, "summary"
        else:
            parse, title = microsoft_standin_module._parse, "subject"
        return [
            (parse(e["start"]["dateTime"]), parse(e["end"]["dateTime"]), e[title], e["id"])
            for e in self.standin.events()
        ]


@pytest.fixture(params=["google", "microsoft"])
def calendar(request) -> Calendar:
    if request.param == "google":
        standin = request.getfixturevalue("google_standin")
        env = {
            "GOOGLE_OAUTH_CLIENT_ID": standin.client_id,
            "GOOGLE_OAUTH_CLIENT_SECRET": standin.client_secret,
            "GOOGLE_ACCOUNTS_URL": standin.url,
            "GOOGLE_OAUTH2_URL": standin.url,
            "GOOGLE_API_URL": standin.url,
        }
        return Calendar("google", standin, env, True)
    standin = request.getfixturevalue("microsoft_standin")
    env = {
        "MICROSOFT_CLIENT_ID": standin.client_id,
        "MICROSOFT_CLIENT_SECRET": standin.client_secret,
        "MICROSOFT_AUTHORITY_URL": standin.url,
        "MICROSOFT_GRAPH_URL": standin.url,
        "MICROSOFT_CA_BUNDLE": standin.ca_file,
    }
    return Calendar("microsoft", standin, env, standin.ca_file)


@pytest.fixture
def worker_extra_env(calendar: Calendar) -> dict[str, str]:
    return {**calendar.env, "PUBLIC_URL": "https://chat.example.com"}


def connect(workspace, user, calendar: Calendar):
    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        provider=calendar.provider,
        redirect_uri="https://app.example/calendar/callback",
    )
    return services.connection_connect_finish(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        params=approve(url, calendar.ca),
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_customer_books_moves_and_cancels_by_chat_in_the_calendar(
    calendar,
    worker,
    graph_standin,
    llm_standin,
    standin_providers,
    live_server,
    cloud_settings,
    client,
):
    channel = make_channel("2015")
    workspace = channel.workspace
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    connection = connect(workspace, UserFactory.create(), calendar)
    assert connection.provider == calendar.provider
    ServiceFactory(workspace=workspace, name="Corte", connection=connection, min_notice_minutes=60)
    standin_providers(workspace.pk, ["openai_compatible"], debounce_seconds=0.3, reply_budget_seconds=120)
    llm_standin.act_as_booking_agent()
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)

    # Book.
    graph_standin.inject_inbound("2015", "34600123456", "Hola, quiero una cita", name="Lucía")

    def confirmed() -> bool:
        """the booking's confirmation reached the Graph API"""
        return len(bodies(graph_standin)) == 1

    wait_for(confirmed, timeout=120)
    booking = Booking.objects.get()
    assert (booking.status, booking.customer_name, booking.customer_phone) == (
        Booking.Status.CONFIRMED,
        "Lucía",
        "34600123456",
    )
    [confirmation] = bodies(graph_standin)
    said, link = confirmation.split(" Añádelo a tu calendario: ")
    assert said == chat.confirmation_text(booking, language="es")
    assert said.startswith("Reservado: Corte el ")
    downloaded = client.get(link.removeprefix("https://chat.example.com"))
    assert downloaded.status_code == 200
    assert f"UID:booking-{workspace.pk}-{booking.idempotency_key}@" in downloaded.content.decode()
    assert calendar.events() == [(booking.start, booking.end, "Corte: Lucía", booking.external_event_id)]
    assert [r["function"]["name"] for r in llm_standin.chat_requests()[0].body["tools"]][0] == "find_slots"

    # Move: a new booking (and event) on the first free time tomorrow; the old one cancelled, its event gone.
    zone = chat.zone_of(workspace.pk)
    tomorrow = dt.datetime.now(zone).date() + dt.timedelta(days=1)
    graph_standin.inject_inbound("2015", "34600123456", "¿Puedo cambiar la cita a mañana?", name="Lucía")

    def moved_confirmed() -> bool:
        """the move's confirmation was sent"""
        return len(bodies(graph_standin)) == 2

    wait_for(moved_confirmed, timeout=120)
    booking.refresh_from_db()
    moved = Booking.objects.get(rescheduled_from=booking)
    assert (booking.status, moved.status) == (Booking.Status.CANCELLED, Booking.Status.CONFIRMED)
    # Every hour is open: tomorrow's first free time is midnight, unless the booking was late tonight.
    assert moved.start.astimezone(zone).date() == tomorrow
    assert moved.start > booking.start
    assert moved.external_event_id != booking.external_event_id
    assert calendar.events() == [(moved.start, moved.end, "Corte: Lucía", moved.external_event_id)]
    said, _link = bodies(graph_standin)[1].split(" Añádelo a tu calendario: ")
    assert said == chat.confirmation_text(moved, language="es")
    assert said.startswith("Cambiado: Corte, ahora el ")

    # Cancel.
    graph_standin.inject_inbound("2015", "34600123456", "Perdona, quiero cancelar la cita", name="Lucía")

    def cancelled() -> bool:
        """the cancellation was sent"""
        return len(bodies(graph_standin)) == 3

    wait_for(cancelled, timeout=120)
    moved.refresh_from_db()
    assert moved.status == Booking.Status.CANCELLED
    assert bodies(graph_standin)[2].startswith("Cancelada: Corte el ")
    assert calendar.events() == []
    assert Booking.objects.filter(status__in=Booking.ACTIVE).count() == 0
