from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.conversations.events import InboundMessage
from apps.conversations.models import Contact, Conversation, ConversationSettings, Message
from apps.conversations.services import actions
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.whatsapp.models import Channel
from chatbot.exceptions import Conflict

# Queueing is asserted on the rows; the Celery hand-off itself is covered by the worker tests.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


@pytest.fixture
def channel():
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="1001")


_counter = iter(range(10**6))


def receive(channel, body="hola", *, wa_id="5215550001", bsuid="", name="Ana", type="text", when=None):
    """Store one inbound message as the webhook would, then process it as the worker would."""
    item = InboundMessage(
        wamid=f"wamid.in.{next(_counter)}",
        type=type,
        timestamp=when or timezone.now(),
        from_wa_id=wa_id,
        from_bsuid=bsuid,
        from_name=name,
        body=body,
        raw={"type": type, type: {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    return message_id, inbound_message_process(message_id=message_id)


def outbound(conversation):
    return list(Message.objects.filter(conversation=conversation, direction="out").order_by("pk"))


def test_first_message_creates_contact_and_conversation_and_opens_the_window(channel):
    sent_at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)

    message_id, result = receive(channel, "Hola, ¿abren hoy?", when=sent_at)

    message = Message.objects.get(pk=message_id)
    contact = Contact.objects.get()
    conversation = Conversation.objects.get()
    assert result == "bot"
    assert (contact.wa_id, contact.profile_name, contact.workspace_id) == (
        "5215550001",
        "Ana",
        channel.workspace_id,
    )
    assert (message.conversation, message.contact) == (conversation, contact)
    assert conversation.last_inbound_at == sent_at
    assert conversation.unread_count == 1
    assert conversation.status == Conversation.Status.OPEN


def test_processing_twice_does_nothing_the_second_time(channel):
    message_id, _ = receive(channel)

    again = inbound_message_process(message_id=message_id)

    assert again == "skipped"
    assert Conversation.objects.get().unread_count == 1


def test_a_message_without_phone_number_is_kept_under_the_business_scoped_id(channel):
    receive(channel, "hi", wa_id="", bsuid="US.13491208655302741918")
    receive(channel, "again", wa_id="", bsuid="US.13491208655302741918")

    contact = Contact.objects.get()
    assert (contact.wa_id, contact.bsuid) == ("", "US.13491208655302741918")
    assert Message.objects.filter(contact=contact).count() == 2
    assert Conversation.objects.count() == 1


def test_phone_number_learned_later_joins_the_same_contact(channel):
    receive(channel, "hi", wa_id="", bsuid="US.1")
    receive(channel, "hi", wa_id="5215550009", bsuid="US.1")

    contact = Contact.objects.get()
    assert (contact.wa_id, contact.bsuid) == ("5215550009", "US.1")


@pytest.mark.parametrize(
    ("word", "language"),
    [("STOP", "en"), ("¡Baja!", "es"), ("cancelar", "es"), ("Unsubscribe", "en"), ("BAJÁ", "es")],
)
def test_opt_out_words_mark_the_contact_and_confirm_once(channel, word, language):
    receive(channel, "hola")

    _, result = receive(channel, word)
    receive(channel, word)  # said twice: still one confirmation

    contact = Contact.objects.get()
    confirmations = outbound(Conversation.objects.get())
    assert result == "opted_out"
    assert contact.opted_out is True and contact.opt_out_source == "keyword"
    assert len(confirmations) == 1
    assert confirmations[0].author == Message.Author.SYSTEM
    assert ("promotional" in confirmations[0].body) == (language == "en")


def test_opt_in_words_subscribe_again(channel):
    receive(channel, "baja")

    _, result = receive(channel, "ALTA")

    assert result == "opted_in"
    assert Contact.objects.get().opted_out is False
    assert "Bienvenido" in outbound(Conversation.objects.get())[-1].body


def test_opt_out_words_are_configurable_per_workspace(channel):
    ConversationSettings.objects.create(workspace=channel.workspace, opt_out_words=["basta"])

    _, stop_result = receive(channel, "stop")
    _, basta_result = receive(channel, "Basta")

    assert stop_result == "bot"
    assert basta_result == "opted_out"


def test_a_keyword_the_detector_cannot_place_is_confirmed_in_the_contacts_language(channel):
    # Before one detector, every opt-out word but STOP/UNSUBSCRIBE was confirmed in Spanish.
    ConversationSettings.objects.create(workspace=channel.workspace, opt_out_words=["end"])
    receive(channel, "hola")
    Contact.objects.update(language="en")

    _, result = receive(channel, "END")

    assert result == "opted_out"
    assert "promotional" in outbound(Conversation.objects.get())[-1].body


def test_a_mixed_message_is_answered_in_the_language_most_of_its_words_are_in(channel):
    # Before one detector, inbound processing took Spanish as soon as one Spanish word appeared.
    _, result = receive(channel, "I want to talk to a human please, gracias")

    assert result == "handoff"
    assert outbound(Conversation.objects.get())[-1].body.startswith("Thanks, a person")


def test_a_sentence_containing_opt_out_is_not_an_opt_out(channel):
    _, result = receive(channel, "no quiero darme de baja todavía")

    assert result == "bot"
    assert Contact.objects.get().opted_out is False


@pytest.mark.parametrize(
    "text", ["Quiero hablar con un agente", "HUMANO por favor", "can I talk to a human?"]
)
def test_asking_for_a_person_moves_to_pending_human_and_says_so(channel, text):
    _, result = receive(channel, text)

    conversation = Conversation.objects.get()
    assert result == "handoff"
    assert conversation.status == Conversation.Status.PENDING_HUMAN
    [reply] = outbound(conversation)
    assert reply.author == Message.Author.SYSTEM
    assert reply.send_state == Message.SendState.PENDING


def test_the_bot_stays_silent_during_a_takeover_until_handed_back(channel):
    receive(channel, "hola")
    conversation = Conversation.objects.get()
    agent = UserFactory.create()
    actions.conversation_takeover(conversation=conversation, user=agent)

    _, during = receive(channel, "¿sigues ahí?")
    actions.conversation_handback(conversation=Conversation.objects.get(), user=agent)
    _, after = receive(channel, "gracias")

    assert during == "human"
    assert after == "bot"
    assert outbound(conversation) == []


def test_the_bot_resumes_after_the_configured_idle_time(channel):
    ConversationSettings.objects.create(workspace=channel.workspace, takeover_idle_minutes=30)
    receive(channel, "hola")
    conversation = actions.conversation_takeover(
        conversation=Conversation.objects.get(), user=UserFactory.create()
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        human_activity_at=timezone.now() - timedelta(minutes=31)
    )

    _, result = receive(channel, "¿hola?")

    assert result == "bot"
    assert Conversation.objects.get().status == Conversation.Status.OPEN


def test_an_agent_reply_takes_the_conversation_and_is_queued(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    receive(channel, "hola")
    conversation = Conversation.objects.get()
    agent = UserFactory.create()

    with django_capture_on_commit_callbacks(execute=True):
        [reply] = actions.conversation_reply(conversation=conversation, user=agent, body="Hola, soy Marta")

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Conversation.Status.HUMAN, agent)
    assert (reply.author, reply.author_user, reply.send_state) == (Message.Author.AGENT, agent, "pending")
    assert tasks_captured.ids("outbound.number_send") == [reply.channel_id]  # its number's sender is woken


def test_with_no_reopen_window_a_closed_conversation_is_not_reopened_a_new_one_starts(channel, settings):
    settings.CONVERSATION_REOPEN_MINUTES = 0
    receive(channel, "hola")
    first = actions.conversation_close(conversation=Conversation.objects.get(), user=None)

    receive(channel, "hola de nuevo")

    assert Conversation.objects.count() == 2
    assert Conversation.objects.exclude(pk=first.pk).get().status == Conversation.Status.OPEN


def test_an_agent_cannot_reply_outside_the_24_hour_window(channel):
    receive(channel, "hola", when=timezone.now() - timedelta(hours=25))
    conversation = Conversation.objects.get()

    with pytest.raises(Conflict) as refused:
        actions.conversation_reply(conversation=conversation, user=UserFactory.create(), body="¿Sigues ahí?")

    assert refused.value.code == "window_closed"
    assert outbound(conversation) == []
    assert Conversation.objects.get().status == Conversation.Status.OPEN


def test_a_returning_customers_message_costs_a_pinned_number_of_statements(
    channel, django_assert_num_queries
):
    # Given a customer with a live conversation, and a workspace answering without a debounce
    from apps.assistant.services import assistant_settings_get_or_create

    assistant = assistant_settings_get_or_create(workspace_id=channel.workspace_id)
    assistant.debounce_seconds = 0
    assistant.save()
    first_at = timezone.now() - timedelta(minutes=5)
    receive(channel, "hola", when=first_at)
    item = InboundMessage(
        wamid="wamid.in.pinned",
        type="text",
        timestamp=first_at + timedelta(minutes=1),
        from_wa_id="5215550001",
        from_name="Ana",
        body="¿tienen envíos?",
        raw={},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])

    # When the worker processes it (issue 11: a statement costs ~1.5 ms of worker CPU)
    with django_assert_num_queries(16):  # 19 before
        assert inbound_message_process(message_id=message_id) == "bot"

    # Then the conversation is as a re-read would have left it
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 2
    assert conversation.last_inbound_at == first_at + timedelta(minutes=1)


def test_a_redelivered_message_whose_task_was_lost_is_queued_again_once_it_is_not_fresh(
    channel, monkeypatch, django_capture_on_commit_callbacks
):
    """A process that died between storing a message and publishing its task leaves the row
    unprocessed: Meta's re-delivery (the webhook was never answered) queues it again. A re-delivery
    of a fresh row (its task is on its way) or of a processed one queues nothing."""
    from apps.conversations import tasks

    queued: list[list[int]] = []
    monkeypatch.setattr(tasks, "inbound_enqueue", lambda ids: queued.append(list(ids)))
    lost, done = (
        InboundMessage(
            wamid=f"wamid.{name}",
            type="text",
            timestamp=timezone.now(),
            from_wa_id=wa_id,
            from_name=name,
            body="hola",
            raw={"type": "text", "text": {"body": "hola"}},
        )
        for name, wa_id in (("LOST", "34600000001"), ("DONE", "34600000002"))
    )
    with django_capture_on_commit_callbacks(execute=True):
        [lost_id, done_id] = inbound_store(channel=channel, messages=[lost, done])
    inbound_message_process(message_id=done_id)
    queued.clear()  # the first delivery's task, lost with its process

    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_store(channel=channel, messages=[lost, done]) == []
    assert queued == []  # fresh: its task may still be on its way
    Message.objects.filter(pk__in=[lost_id, done_id]).update(
        created_at=timezone.now() - timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert inbound_store(channel=channel, messages=[lost, done]) == []

    assert queued == [[lost_id]]
