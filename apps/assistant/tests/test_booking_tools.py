"""Booking by chat: generate_reply with the booking tools, over litellm, against the LLM stand-in
(which issues OpenAI-style tool calls) and the Google Calendar stand-in."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from apps.assistant import providers, tools
from apps.assistant.models import BusinessProfile
from apps.assistant.reply import generate_reply
from apps.assistant.types import ReplyRequest
from apps.calendar import chat, services
from apps.calendar.models import Booking
from apps.calendar.tests.factories import ServiceFactory
from apps.conversations.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

COMPAT, STUDIO = "openai_compatible", "lmstudio"
EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported():
    providers.warm_up()  # seconds on a busy machine: not inside a test's reply budget


@pytest.fixture
def shop(workspace, standin_providers):
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    standin_providers(workspace.pk, [COMPAT], reply_budget_seconds=120)
    service = ServiceFactory(workspace=workspace, name="Corte", duration_minutes=30)
    contact = ContactFactory(workspace=workspace, wa_id="34600111222", name="Lucía")
    return workspace, service, contact


def ask(workspace, contact, question, turn="wamid.t1", **extra):
    return generate_reply(
        ReplyRequest(
            workspace_id=workspace.pk,
            question=question,
            customer_name=contact.display_name,
            language_hint="es",
            contact_id=contact.pk,
            customer_phone=contact.wa_id,
            turn_key=turn,
            **extra,
        )
    )


def tool_messages(request):
    return [json.loads(m["content"]) for m in request.messages if m.get("role") == "tool"]


def test_a_customer_books_by_chat_and_the_name_and_number_come_from_the_contact(shop, llm_standin):
    workspace, service, contact = shop
    llm_standin.act_as_booking_agent()
    first_free = services.service_slots(
        service=service,
        start=dt.datetime.now(dt.UTC),
        end=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
        limit=1,
    )[0]

    result = ask(workspace, contact, "Hola, quiero una cita para cortarme el pelo")

    booking = Booking.objects.get()
    assert (booking.contact_id, booking.customer_name, booking.customer_phone, booking.start) == (
        contact.pk, "Lucía", "34600111222", first_free,
    )  # fmt: skip
    assert booking.status == Booking.Status.PENDING  # no calendar connected: a person confirms
    when = chat.when_text(first_free, zone=chat.zone_of(workspace.pk), language="es")
    assert result.text == (f"Anotado: Corte el {when}. Una persona del equipo te lo confirmará en breve.")
    assert result.handoff is False
    find, book, final = llm_standin.chat_requests()
    assert [t["function"]["name"] for t in find.body["tools"]] == [
        "find_slots", "book", "reschedule", "cancel", "my_bookings",
    ]  # fmt: skip
    assert (
        tool_messages(book)[0]["slots"][0]["start"]
        == first_free.astimezone(chat.zone_of(workspace.pk)).isoformat()
    )
    assert tool_messages(final)[-1]["ok"] is True
    assert "customer_name" not in json.dumps(book.body["tools"])  # the model is never asked who books


def test_the_same_turn_answered_again_books_once(shop, llm_standin):
    workspace, _, contact = shop
    llm_standin.act_as_booking_agent()

    first = ask(workspace, contact, "quiero una cita")
    again = ask(workspace, contact, "quiero una cita")  # the task ran twice for one customer turn

    assert Booking.objects.count() == 1
    assert first.text == again.text


def test_invented_customer_details_and_bad_arguments_are_refused_to_the_model(shop, llm_standin):
    workspace, service, contact = shop
    llm_standin.next_tool_calls(
        [
            {"name": "book", "arguments": {"service_id": service.pk, "start": "mañana a las 10"}},
            {"name": "book", "arguments": "{not json"},
            {"name": "delete_everything", "arguments": {}},
        ]
    )
    llm_standin.answer = "Perdona, ¿qué hora prefieres?"

    result = ask(workspace, contact, "reservar")

    assert result.text == "Perdona, ¿qué hora prefieres?"
    assert not Booking.objects.exists()
    errors = [r["error"] for r in tool_messages(llm_standin.chat_requests()[1])]
    assert errors == [
        "`start` must be an ISO 8601 date and time, as find_slots returned it.",
        "The arguments must be a JSON object.",
        "There is no tool named 'delete_everything'.",
    ]


def test_the_model_cannot_choose_who_books(shop, llm_standin):
    workspace, service, contact = shop
    start = services.service_slots(
        service=service,
        start=dt.datetime.now(dt.UTC),
        end=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
        limit=1,
    )[0]
    arguments = {
        "start": start.isoformat(),
        "customer_name": "Mallory",
        "customer_phone": "999",
        "contact_id": 1,
    }
    llm_standin.next_tool_calls([{"name": "book", "arguments": arguments}])
    llm_standin.answer = "Hecho."

    ask(workspace, contact, "reservar")

    booking = Booking.objects.get()
    assert (booking.customer_name, booking.customer_phone, booking.contact_id) == (
        "Lucía",
        "34600111222",
        contact.pk,
    )


def test_tool_rounds_are_bounded_and_the_last_turn_must_answer_in_text(shop, llm_standin):
    workspace, _, contact = shop
    for _ in range(tools.MAX_TOOL_ROUNDS + 2):
        llm_standin.next_tool_calls([{"name": "my_bookings", "arguments": {}}])
    llm_standin.answer = "No tienes citas."

    result = ask(workspace, contact, "¿tengo alguna cita?")

    requests = llm_standin.chat_requests()
    assert len(requests) == tools.MAX_TOOL_ROUNDS + 1
    assert [r.body.get("tool_choice") for r in requests] == [None] * tools.MAX_TOOL_ROUNDS + ["none"]
    assert result.text == "No tienes citas."


def test_a_provider_failing_after_a_booking_still_confirms_it_and_no_other_model_books_again(
    workspace, standin_providers, llm_standin
):
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    standin_providers(workspace.pk, [COMPAT, STUDIO], reply_budget_seconds=120)
    ServiceFactory(workspace=workspace, name="Corte")
    contact = ContactFactory(workspace=workspace, name="Ana")
    llm_standin.act_as_booking_agent()
    llm_standin.fail_next(5, status=500, after=2)  # find_slots and book pass, then everything fails

    result = ask(workspace, contact, "quiero una cita")

    booking = Booking.objects.get()
    assert result.text.startswith("Anotado: Corte el ")
    assert result.text == chat.confirmation_text(booking, language="es")
    assert [r.model for r in llm_standin.chat_requests()] == [f"{COMPAT}-model"] * 3  # no second model


def test_without_a_service_or_a_contact_no_tools_are_offered(workspace, standin_providers, llm_standin):
    standin_providers(workspace.pk, [COMPAT])
    contact = ContactFactory(workspace=workspace)
    ask(workspace, contact, "quiero una cita")
    ServiceFactory(workspace=workspace, is_active=True)
    generate_reply(ReplyRequest(workspace_id=workspace.pk, question="una cita, por favor", turn_key="t2"))

    assert [("tools" in r.body) for r in llm_standin.chat_requests()] == [False, False]


def test_a_taken_slot_is_said_honestly_with_the_next_one(shop, llm_standin):
    workspace, service, contact = shop
    now = dt.datetime.now(dt.UTC)
    first = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=1)[0]
    other = ContactFactory(workspace=workspace)
    services.booking_create(service=service, start=first, idempotency_key="other", contact_id=other.pk)
    second = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=1)[0]
    llm_standin.next_tool_calls([{"name": "book", "arguments": {"start": first.isoformat()}}])
    llm_standin.act_as_booking_agent()

    result = ask(workspace, contact, "reservar")

    assert Booking.objects.filter(contact=contact).count() == 0
    assert result.text == "Esa hora ya no está libre. La siguiente hora libre es el {}.".format(
        chat.when_text(second, zone=chat.zone_of(workspace.pk), language="es")
    )


def test_a_customer_cancels_and_moves_only_their_own_bookings(shop, llm_standin):
    workspace, service, contact = shop
    now = dt.datetime.now(dt.UTC)
    other = ContactFactory(workspace=workspace)
    starts = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=3)
    theirs = services.booking_create(
        service=service, start=starts[0], idempotency_key="theirs", contact_id=other.pk
    )
    mine = services.booking_create(
        service=service, start=starts[2], idempotency_key="mine", contact_id=contact.pk
    )
    llm_standin.next_tool_calls([{"name": "cancel", "arguments": {"booking_id": theirs.pk}}])
    llm_standin.act_as_booking_agent()

    refused = ask(workspace, contact, "cancelar", turn="t1")
    theirs.refresh_from_db()
    assert theirs.status != Booking.Status.CANCELLED
    assert refused.text == "No encuentro esa cita tuya."

    cancelled = ask(workspace, contact, "quiero cancelar mi cita", turn="t2")
    mine.refresh_from_db()
    assert mine.status == Booking.Status.CANCELLED
    assert cancelled.text == "Cancelada: Corte el {}.".format(
        chat.when_text(mine.start, zone=chat.zone_of(workspace.pk), language="es")
    )
    theirs.refresh_from_db()
    assert theirs.status == Booking.Status.PENDING  # the other customer's booking untouched


def test_a_customer_moves_their_booking_by_chat(shop, llm_standin):
    workspace, service, contact = shop
    now = dt.datetime.now(dt.UTC)
    start = services.service_slots(service=service, start=now, end=now + dt.timedelta(days=2), limit=1)[0]
    mine = services.booking_create(
        service=service, start=start, idempotency_key="mine", contact_id=contact.pk
    )
    llm_standin.act_as_booking_agent()

    result = ask(workspace, contact, "quiero cambiar mi cita")

    mine.refresh_from_db()
    moved = Booking.objects.get(rescheduled_from=mine)
    assert (mine.status, moved.status, moved.contact_id) == (
        Booking.Status.CANCELLED,
        Booking.Status.PENDING,
        contact.pk,
    )
    assert moved.start != start
    assert result.text == chat.confirmation_text(moved, language="es")
