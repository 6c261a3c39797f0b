"""The offline booking flow through the conversation pipeline (no LLM configured): a request for an
appointment gets a WhatsApp list of 3 free times; the customer's list reply books one; a time taken
meanwhile is answered with the next free ones."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.assistant.models import AssistantSettings, BusinessProfile
from apps.calendar import chat, services
from apps.calendar.models import Booking
from apps.calendar.tests.factories import ServiceFactory
from apps.conversations.events import InboundMessage
from apps.conversations.models import Message
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.conversations.tests.factories import ContactFactory
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
WA_ID = "34600555000"


@pytest.fixture
def shop(workspace, tasks_captured, settings):
    settings.INBOUND_REPLY_RATE = "1000/60"
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    AssistantSettings.objects.create(workspace=workspace, fallback_order=["offline"])  # no LLM at all
    service = ServiceFactory(workspace=workspace, name="Revisión", duration_minutes=60)
    channel = Channel.objects.create(workspace=workspace, kind="cloud", phone_number_id="flow-1")
    tasks_captured.run("llm.reply_generate")
    return channel, service


def customer_says(channel, capture, number, *, text="", row=None):
    """The customer's message (a text, or a pick `row` = (id, title) from a list); the bot's reply."""
    if row is None:
        raw = {"type": "text", "text": {"body": text}}
        kind, body = "text", text
    else:
        raw = {
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": row[0], "title": row[1]}},
        }
        kind, body = "interactive", row[1]
    item = InboundMessage(
        wamid=f"wamid.flow.{number}", type=kind, timestamp=timezone.now(), from_wa_id=WA_ID,
        from_name="Pablo", body=body, raw=raw,
    )  # fmt: skip
    [message_id] = inbound_store(channel=channel, messages=[item])
    with capture(execute=True):
        inbound_message_process(message_id=message_id)
    return Message.objects.get(direction=Message.Direction.OUTBOUND, dedupe_key=f"reply:{message_id}")


def rows_of(reply):
    return [(r["id"], r["title"]) for r in reply.payload["action"]["sections"][0]["rows"]]


def test_a_customer_books_from_the_list_and_a_taken_time_offers_the_next(
    shop, django_capture_on_commit_callbacks
):
    channel, service = shop
    now = timezone.now()
    free = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=4)

    offer = customer_says(channel, django_capture_on_commit_callbacks, 1, text="Hola, ¿puedo pedir cita?")

    assert offer.type == "interactive"
    assert offer.body == "Estas son las próximas horas libres para Revisión:"
    rows = rows_of(offer)
    assert [r[0] for r in rows] == [f"cal:book:{service.pk}:{int(s.timestamp())}" for s in free[:3]]
    assert all(len(title) <= 24 for _, title in rows)
    assert offer.payload["action"]["button"] == "Ver horas"

    # Someone else takes the first time before the customer picks it.
    other = ContactFactory(workspace=service.workspace)
    services.booking_create(service=service, start=free[0], idempotency_key="other", contact_id=other.pk)
    again = customer_says(channel, django_capture_on_commit_callbacks, 2, row=rows[0])

    assert not Booking.objects.filter(contact__wa_id=WA_ID).exists()
    assert again.body.startswith("Esa hora la acaban de reservar. Estas son las próximas horas libres")
    next_rows = rows_of(again)
    after = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=1)[0]
    assert next_rows[0][0] == f"cal:book:{service.pk}:{int(after.timestamp())}"

    done = customer_says(channel, django_capture_on_commit_callbacks, 3, row=next_rows[0])

    booking = Booking.objects.get(contact__wa_id=WA_ID)
    assert (booking.start, booking.customer_name, booking.customer_phone) == (after, "Pablo", WA_ID)
    assert done.type == "text"
    assert done.body == chat.confirmation_text(booking, language="es")


def test_a_forged_row_id_books_nothing(shop, django_capture_on_commit_callbacks):
    channel, service = shop
    reply = customer_says(
        channel, django_capture_on_commit_callbacks, 1, row=(f"cal:book:{service.pk}:1000000001", "x")
    )  # a start in 2001: not bookable
    assert not Booking.objects.exists()
    assert reply.type == "interactive"  # the current free times instead


def test_a_whatsapp_web_channel_gets_no_list(shop, django_capture_on_commit_callbacks):
    channel, service = shop
    Channel.objects.filter(pk=channel.pk).update(kind="web")
    channel.refresh_from_db()

    reply = customer_says(channel, django_capture_on_commit_callbacks, 1, text="quiero una cita")

    assert reply.type == "text"  # the offline responder's answer: WhatsApp Web cannot send lists
    assert not Booking.objects.exists()
