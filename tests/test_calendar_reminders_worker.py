"""Calendar bookings with real processes, against the Outlook stand-in (msal and Microsoft Graph):
- the reminders: the beat's task, sent through the broker to a real worker, queues the 24 h and 2 h
  reminders; the worker's sender delivers them to the Graph stand-in, as text inside the customer's
  24-hour window and as the approved template outside it, once each however often the tick runs;
- the offline list flow (no LLM configured): "cita" -> a WhatsApp list of free times at the Graph
  stand-in; the customer's pick -> the booking, its event in the Outlook calendar, the confirmation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.assistant.models import AssistantSettings, BusinessProfile
from apps.calendar import chat, services
from apps.calendar.models import Booking, BookingReminder
from apps.calendar.tests.conftest import approve
from apps.calendar.tests.factories import ServiceFactory
from apps.campaigns.models import Template
from apps.campaigns.services import reminders
from apps.campaigns.tasks import booking_reminders_tick
from apps.conversations.models import Message
from apps.conversations.tests.factories import ContactFactory, ConversationFactory
from standins.microsoft import _parse as graph_time
from tests import test_pipeline_worker
from tests.test_pipeline_worker import APP_SECRET, bodies, make_channel, wait_for

worker = test_pipeline_worker.worker  # the same real worker process, with the environment below

EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def worker_extra_env(microsoft_standin) -> dict[str, str]:
    return {
        "MICROSOFT_CLIENT_ID": microsoft_standin.client_id,
        "MICROSOFT_CLIENT_SECRET": microsoft_standin.client_secret,
        "MICROSOFT_AUTHORITY_URL": microsoft_standin.url,
        "MICROSOFT_GRAPH_URL": microsoft_standin.url,
        "MICROSOFT_CA_BUNDLE": microsoft_standin.ca_file,
        "PUBLIC_URL": "https://chat.example.com",
    }


@pytest.fixture
def worker_queues() -> str:
    return "inbound,llm,outbound,campaigns,default"  # campaigns: where the beat sends the reminders' tick


def connect_outlook(workspace, microsoft_standin):
    user = UserFactory.create()
    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        provider="microsoft",
        redirect_uri="https://app.example/calendar/callback",
    )
    return services.connection_connect_finish(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        params=approve(url, microsoft_standin.ca_file),
    )


def outlook_events(microsoft_standin) -> list[tuple[dt.datetime, str, str]]:
    return [(graph_time(e["start"]["dateTime"]), e["subject"], e["id"]) for e in microsoft_standin.events()]


def ticks_done(log: Path) -> int:
    return log.read_text().count("campaigns.booking_reminders_tick[") // 2  # "received" and "succeeded"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_beat_tick_sends_each_reminder_once_as_text_or_template(
    worker, graph_standin, microsoft_standin, cloud_settings, tmp_path
):
    channel = make_channel("2031")
    workspace = channel.workspace
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    service = ServiceFactory(
        workspace=workspace,
        name="Corte",
        connection=connect_outlook(workspace, microsoft_standin),
        reminder_hours=[24, 2],
        reminder_template="recordatorio_cita",
    )
    Template.objects.create(
        workspace=workspace, channel=channel, waba_id="102290129340398", name="recordatorio_cita",
        language="es", category="UTILITY", status="APPROVED", variable_count=2,
        components=[{"type": "BODY", "text": "Te esperamos: {{1}}, {{2}}.", "example": {"body_text": [["a", "b"]]}}],
    )  # fmt: skip
    now = timezone.now()
    # Lucía wrote an hour ago (window open); her appointment is in just under 24 h: the 24 h reminder.
    lucia = ContactFactory(workspace=workspace, wa_id="34600111222", name="Lucía", language="es")
    ConversationFactory(channel=channel, contact=lucia, last_inbound_at=now - HOUR)
    # Pedro last wrote three days ago (window closed); his is in under 2 h: the 2 h one, as the template.
    pedro = ContactFactory(workspace=workspace, wa_id="34600333444", name="Pedro", language="es")
    ConversationFactory(channel=channel, contact=pedro, last_inbound_at=now - 72 * HOUR)
    bookings = {}
    for contact, (low, high) in ((lucia, (22.5, 23.5)), (pedro, (1.2, 1.8))):
        [start] = services.service_slots(
            service=service, start=now + low * HOUR, end=now + high * HOUR, limit=1
        )
        bookings[contact.name] = services.booking_create(
            service=service, start=start, idempotency_key=contact.wa_id, contact_id=contact.pk,
            customer_name=contact.name, customer_phone=contact.wa_id,
        )  # fmt: skip
    Booking.objects.update(created_at=now - 72 * HOUR)  # booked days ago: both reminders apply
    assert len(microsoft_standin.events()) == 2

    # The beat's tick, twice, as the beat sends it: by name to its queue; the worker runs both.
    booking_reminders_tick.delay()
    booking_reminders_tick.delay()
    log = tmp_path / "worker.log"

    messages = Message.objects.filter(dedupe_key__startswith="reminder:")

    def delivered() -> bool:
        """both ticks ran and two reminders were sent to the Graph API"""
        states = list(messages.values_list("send_state", flat=True))
        return ticks_done(log) == 2 and states == [Message.SendState.SENT] * 2

    wait_for(delivered, timeout=60)
    assert log.read_text().count("succeeded") >= 2
    sent = {record["to"]: record for record in graph_standin.sent}
    lucia_booking, pedro_booking = bookings["Lucía"], bookings["Pedro"]
    zone = chat.zone_of(workspace.pk)
    assert sent["34600111222"]["type"] == "text"
    assert sent["34600111222"]["content"]["body"] == reminders.reminder_text(lucia_booking, language="es")
    assert sent["34600111222"]["content"]["body"].startswith("Recordatorio: Corte el ")
    template = sent["34600333444"]
    assert template["type"] == "template"
    assert template["content"]["name"] == "recordatorio_cita"
    assert template["content"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Corte"},
        {"type": "text", "text": chat.when_text(pedro_booking.start, zone=zone, language="es")},
    ]
    assert sorted(
        BookingReminder.objects.values_list("booking__customer_name", "hours_before", "status")
    ) == [
        ("Lucía", 24, "sent"),
        ("Pedro", 2, "sent"),
        ("Pedro", 24, "skipped"),  # superseded by the 2 h one: never two at once
    ]
    assert len(graph_standin.sent) == 2
    assert sorted(m.wamid for m in messages) == sorted(r["wamid"] for r in graph_standin.sent)

    # A third tick later finds nothing due: nothing more is sent.
    booking_reminders_tick.delay()
    wait_for(lambda: ticks_done(log) == 3, timeout=30)
    assert len(graph_standin.sent) == 2
    assert messages.count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_without_an_llm_the_customer_books_from_a_list_into_the_outlook_calendar(
    worker, graph_standin, microsoft_standin, live_server, cloud_settings
):
    channel = make_channel("2032")
    workspace = channel.workspace
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    AssistantSettings.objects.create(workspace=workspace, fallback_order=["offline"], debounce_seconds=0.3)
    service = ServiceFactory(
        workspace=workspace,
        name="Revisión",
        duration_minutes=60,
        connection=connect_outlook(workspace, microsoft_standin),
    )
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    now = timezone.now()
    free = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=3)

    graph_standin.inject_inbound("2032", "34600555000", "Hola, ¿puedo pedir cita?", name="Pablo")

    def offered() -> bool:
        """the list of free times reached the Graph API"""
        return len(graph_standin.sent) == 1

    wait_for(offered, timeout=60)
    [offer] = graph_standin.sent
    assert (offer["type"], offer["content"]["type"]) == ("interactive", "list")
    assert offer["content"]["body"]["text"] == "Estas son las próximas horas libres para Revisión:"
    rows = offer["content"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [f"cal:book:{service.pk}:{int(s.timestamp())}" for s in free]

    graph_standin.inject_list_reply("2032", "34600555000", rows[1]["id"], rows[1]["title"], name="Pablo")

    def confirmed() -> bool:
        """the booking's confirmation was sent"""
        return len(graph_standin.sent) == 2

    wait_for(confirmed, timeout=60)
    booking = Booking.objects.get()
    assert (booking.status, booking.start, booking.customer_name) == (
        Booking.Status.CONFIRMED,
        free[1],
        "Pablo",
    )
    said = bodies(graph_standin)[1].split(" Añádelo a tu calendario: ")[0]
    assert said == chat.confirmation_text(booking, language="es")
    assert outlook_events(microsoft_standin) == [(free[1], "Revisión: Pablo", booking.external_event_id)]
