"""Booking reminders: queued once through the outbound queue, a template outside the 24-hour window or
skipped with the reason; "cancelar" / "cambiar" in reply to one works."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.assistant.models import AssistantSettings, BusinessProfile
from apps.calendar import chat, services
from apps.calendar.models import Booking, BookingReminder
from apps.calendar.tests.factories import ServiceFactory
from apps.campaigns.models import Template
from apps.campaigns.services import reminders
from apps.campaigns.tests.conftest import WABA
from apps.conversations.events import InboundMessage
from apps.conversations.models import Contact, Message
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.conversations.tests.factories import ContactFactory, ConversationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def booked(waba_channel):
    workspace = waba_channel.workspace
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    service = ServiceFactory(workspace=workspace, name="Corte", reminder_template="recordatorio_cita")
    contact = ContactFactory(workspace=workspace, wa_id="34611000111", language="es")
    conversation = ConversationFactory(channel=waba_channel, contact=contact, last_inbound_at=timezone.now())
    now = timezone.now()
    start = services.service_slots(service=service, start=now + 30 * HOUR, end=now + 40 * HOUR, limit=1)[0]
    booking = services.booking_create(
        service=service, start=start, idempotency_key="b1", contact_id=contact.pk
    )
    Booking.objects.filter(pk=booking.pk).update(created_at=now - 48 * HOUR)
    booking.refresh_from_db()
    return booking, conversation


def reminder_messages():
    return list(Message.objects.filter(dedupe_key__startswith="reminder:").order_by("pk"))


def test_the_24_and_2_hour_reminders_go_out_once_each_inside_the_window(booked):
    booking, conversation = booked
    at_24 = booking.start - 23 * HOUR

    assert reminders.booking_reminders_send(now=booking.start - 25 * HOUR)["sent"] == 0
    assert reminders.booking_reminders_send(now=at_24) == {"sent": 1, "skipped": 0, "already": 0}
    assert reminders.booking_reminders_send(now=at_24 + HOUR)["sent"] == 0  # at most once
    assert reminders.booking_remind(booking=booking, hours_before=24, now=at_24) == "already"

    [message] = reminder_messages()
    when = chat.when_text(booking.start, zone=chat.zone_of(booking.workspace_id), language="es")
    assert message.body == (
        f"Recordatorio: Corte el {when}. Responde CAMBIAR para cambiarla o CANCELAR para anularla."
    )
    assert (message.conversation_id, message.author, message.type) == (conversation.pk, "bot", "text")
    assert message.template_fallback is None  # no approved template of that name

    conversation.last_inbound_at = booking.start - 3 * HOUR
    conversation.save()
    assert reminders.booking_reminders_send(now=booking.start - 90 * dt.timedelta(minutes=1))["sent"] == 1
    assert [r.hours_before for r in BookingReminder.objects.order_by("pk")] == [24, 2]
    assert len(reminder_messages()) == 2


def test_outside_the_window_without_a_template_it_is_skipped_with_the_reason(booked):
    booking, conversation = booked
    conversation.last_inbound_at = timezone.now() - 72 * HOUR
    conversation.save()

    assert reminders.booking_reminders_send(now=booking.start - 23 * HOUR)["skipped"] == 1

    row = BookingReminder.objects.get()
    assert (row.status, row.reason) == (
        "skipped",
        "outside the 24-hour window and no approved reminder template",
    )
    assert reminder_messages() == []


def test_outside_the_window_the_approved_template_goes_instead(booked, waba_channel):
    booking, conversation = booked
    conversation.last_inbound_at = timezone.now() - 72 * HOUR
    conversation.save()
    Template.objects.create(
        workspace=waba_channel.workspace, channel=waba_channel, waba_id=WABA, name="recordatorio_cita",
        language="es", category="UTILITY", status="APPROVED", variable_count=2,
        components=[{"type": "BODY", "text": "Te esperamos: {{1}}, {{2}}.", "example": {"body_text": [["a", "b"]]}}],
    )  # fmt: skip

    reminders.booking_reminders_send(now=booking.start - 23 * HOUR)

    [message] = reminder_messages()
    when = chat.when_text(booking.start, zone=chat.zone_of(booking.workspace_id), language="es")
    assert message.template_fallback["name"] == "recordatorio_cita"
    assert message.template_fallback["components"][0]["parameters"] == [
        {"type": "text", "text": "Corte"}, {"type": "text", "text": when},
    ]  # fmt: skip


def test_a_booking_made_inside_the_reminder_period_gets_no_reminder(booked):
    booking, _ = booked
    Booking.objects.filter(pk=booking.pk).update(created_at=booking.start - 90 * dt.timedelta(minutes=1))

    reminders.booking_reminders_send(now=booking.start - HOUR)

    assert dict(BookingReminder.objects.values_list("hours_before", "reason")) == {
        2: "booked less than 2 h before: the confirmation was enough",
        24: "superseded by the 2 h reminder",
    }
    assert reminder_messages() == []


def say(channel, capture, number, text):
    item = InboundMessage(
        wamid=f"wamid.rem.{number}", type="text", timestamp=timezone.now(), from_wa_id="34611000111",
        from_name="Lucía", body=text, raw={"type": "text", "text": {"body": text}},
    )  # fmt: skip
    [message_id] = inbound_store(channel=channel, messages=[item])
    with capture(execute=True):
        inbound_message_process(message_id=message_id)
    return Message.objects.filter(direction="out", dedupe_key=f"reply:{message_id}").first()


@pytest.fixture
def reminded(booked, tasks_captured, settings):
    booking, conversation = booked
    settings.INBOUND_REPLY_RATE = "1000/60"
    AssistantSettings.objects.create(workspace_id=booking.workspace_id, fallback_order=["offline"])
    tasks_captured.run("llm.reply_generate")
    reminders.booking_remind(booking=booking, hours_before=24, now=timezone.now())
    return booking, conversation


def test_cancelar_after_a_reminder_cancels_the_booking_and_does_not_opt_out(
    reminded, django_capture_on_commit_callbacks
):
    booking, conversation = reminded

    reply = say(conversation.channel, django_capture_on_commit_callbacks, 1, "Cancelar")

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert Contact.objects.get(pk=conversation.contact_id).opted_out is False
    assert reply.body.startswith("Cancelada: Corte el ")


def test_cancelar_without_a_reminder_still_opts_out(booked, django_capture_on_commit_callbacks):
    booking, conversation = booked

    say(conversation.channel, django_capture_on_commit_callbacks, 1, "cancelar")

    booking.refresh_from_db()
    assert booking.status != Booking.Status.CANCELLED
    assert Contact.objects.get(pk=conversation.contact_id).opted_out is True


def test_cambiar_after_a_reminder_offers_times_and_the_pick_moves_the_booking(
    reminded, django_capture_on_commit_callbacks
):
    booking, conversation = reminded

    offer = say(conversation.channel, django_capture_on_commit_callbacks, 1, "cambiar")

    assert offer.type == "interactive"
    row = offer.payload["action"]["sections"][0]["rows"][0]
    assert row["id"].startswith(f"cal:move:{booking.pk}:")
    item = InboundMessage(
        wamid="wamid.rem.pick", type="interactive", timestamp=timezone.now(), from_wa_id="34611000111",
        from_name="Lucía", body=row["title"],
        raw={"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": row["id"], "title": row["title"]}}},
    )  # fmt: skip
    [message_id] = inbound_store(channel=conversation.channel, messages=[item])
    with django_capture_on_commit_callbacks(execute=True):
        inbound_message_process(message_id=message_id)

    booking.refresh_from_db()
    moved = Booking.objects.get(rescheduled_from=booking)
    assert booking.status == Booking.Status.CANCELLED
    assert int(moved.start.timestamp()) == int(row["id"].rsplit(":", 1)[1])
    done = Message.objects.get(direction="out", dedupe_key=f"reply:{message_id}")
    assert done.body == chat.confirmation_text(moved, language="es")
