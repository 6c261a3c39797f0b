"""Booking by chat end to end with real processes: a signed webhook (live server) -> inbound -> the llm
worker -> the LLM stand-in's tool calls -> the booking in the Google stand-in's calendar -> the
confirmation sent to the Graph stand-in; then a cancellation by chat takes the event away."""

from __future__ import annotations

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.assistant.models import BusinessProfile
from apps.calendar import chat, services
from apps.calendar.models import Booking
from apps.calendar.tests.factories import ServiceFactory
from tests import test_pipeline_worker
from tests.test_pipeline_worker import APP_SECRET, bodies, make_channel, wait_for

worker = test_pipeline_worker.worker  # the same real worker process, with the environment below

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def worker_extra_env(google_standin) -> dict[str, str]:
    return {
        "GOOGLE_OAUTH_CLIENT_ID": google_standin.client_id,
        "GOOGLE_OAUTH_CLIENT_SECRET": google_standin.client_secret,
        "GOOGLE_ACCOUNTS_URL": google_standin.url,
        "GOOGLE_OAUTH2_URL": google_standin.url,
        "GOOGLE_API_URL": google_standin.url,
        "PUBLIC_URL": "https://chat.example.com",
    }


def connect_google(workspace, user):
    from apps.calendar.tests.conftest import approve

    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        provider="google",
        redirect_uri="https://app.example/calendar/callback",
    )
    return services.connection_connect_finish(
        workspace_id=workspace.pk, user_id=user.pk, session_key="session-1", params=approve(url)
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_customer_books_and_cancels_by_chat_in_the_google_calendar(
    worker,
    graph_standin,
    llm_standin,
    standin_providers,
    google_standin,
    live_server,
    cloud_settings,
    client,
):
    channel = make_channel("2015")
    workspace = channel.workspace
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    connection = connect_google(workspace, UserFactory.create())
    ServiceFactory(workspace=workspace, name="Corte", connection=connection, min_notice_minutes=60)
    standin_providers(workspace.pk, ["openai_compatible"], debounce_seconds=0.3, reply_budget_seconds=120)
    llm_standin.act_as_booking_agent()
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)

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
    [event] = google_standin.events()
    assert event["id"] == booking.external_event_id
    assert event["summary"] == "Corte: Lucía"
    assert [r["function"]["name"] for r in llm_standin.chat_requests()[0].body["tools"]][0] == "find_slots"

    graph_standin.inject_inbound("2015", "34600123456", "Perdona, quiero cancelar la cita", name="Lucía")

    def cancelled() -> bool:
        """the cancellation was sent"""
        return len(bodies(graph_standin)) == 2

    wait_for(cancelled, timeout=120)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert bodies(graph_standin)[1].startswith("Cancelada: Corte el ")
    assert google_standin.events() == []
