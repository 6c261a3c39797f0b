"""A customer message that always fails is set aside after INBOUND_MAX_ATTEMPTS; outages don't count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.conversations.events import InboundMessage
from apps.conversations.models import Conversation, Message
from apps.conversations.services import inbound
from apps.conversations.services.ingest import inbound_store
from apps.conversations.services.sweeper import sweep
from apps.whatsapp.models import Channel
from chatbot.exceptions import Conflict

pytestmark = pytest.mark.django_db

_counter = iter(range(10**6))


@pytest.fixture(autouse=True)
def _three_attempts(settings, tasks_captured):
    settings.INBOUND_MAX_ATTEMPTS = 3


@pytest.fixture
def channel():
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="2002")


def store(channel, body="hola", wa_id="5215550001") -> int:
    item = InboundMessage(
        wamid=f"wamid.aside.{next(_counter)}",
        type="text",
        timestamp=timezone.now(),
        from_wa_id=wa_id,
        from_bsuid="",
        from_name="Ana",
        body=body,
        raw={"type": "text", "text": {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    return message_id


@pytest.fixture
def poison(monkeypatch):
    """Make processing of the given message ids raise a bug-like error (not an outage)."""
    bad: set[int] = set()
    real = inbound._process_one

    def process(message_id: int) -> str:
        if message_id in bad:
            raise ValueError(f"cannot parse message {message_id}")
        return real(message_id)

    monkeypatch.setattr(inbound, "_process_one", process)
    return bad


def _set_aside_count() -> float:
    return REGISTRY.get_sample_value("chatbot_conversations_inbound_set_aside_total") or 0.0


def test_a_message_that_always_fails_is_set_aside_after_the_maximum_attempts(channel, poison):
    message_id = store(channel)
    poison.add(message_id)
    before = _set_aside_count()

    for _ in range(2):
        with pytest.raises(ValueError):
            inbound.inbound_message_process(message_id=message_id)
    third = inbound.inbound_message_process(message_id=message_id)

    message = Message.objects.get(pk=message_id)
    assert third == "set_aside"
    assert message.attempts == 3
    assert message.processed_at is not None
    assert message.failure_reason == inbound.SET_ASIDE
    assert message.last_error == f"ValueError: cannot parse message {message_id}"
    assert inbound.inbound_message_process(message_id=message_id) == "skipped"
    assert _set_aside_count() - before == 1  # /metrics counts it, for an alert


def test_the_sweeper_stops_re_enqueueing_a_set_aside_message(channel, poison):
    message_id = store(channel)
    poison.add(message_id)
    Message.objects.filter(pk=message_id).update(created_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(ValueError):
        inbound.inbound_message_process(message_id=message_id)
    before = sweep(processing_timeout=timedelta(minutes=10))["inbound"]
    Message.objects.filter(pk=message_id).update(attempts=2)
    inbound.inbound_message_process(message_id=message_id)  # the last attempt

    after = sweep(processing_timeout=timedelta(minutes=10))["inbound"]

    assert (before, after) == (1, 0)


def test_a_failing_message_holds_its_senders_later_ones_only_until_it_is_set_aside(channel, poison):
    first = store(channel, "primero")
    poison.add(first)
    second = store(channel, "segundo")

    with pytest.raises(ValueError):
        inbound.inbound_message_process(message_id=second)  # the earlier message goes first and fails
    held = Message.objects.get(pk=second).processed_at
    with pytest.raises(ValueError):
        inbound.inbound_message_process(message_id=second)
    result = inbound.inbound_message_process(message_id=second)

    assert held is None  # order kept while the first might still succeed
    assert result == "bot"
    assert Message.objects.get(pk=first).failure_reason == inbound.SET_ASIDE
    assert Message.objects.get(pk=second).conversation == Conversation.objects.get()


def test_another_senders_messages_are_never_held(channel, poison):
    bad = store(channel, wa_id="5215550001")
    poison.add(bad)
    other = store(channel, wa_id="5215550002")

    assert inbound.inbound_message_process(message_id=other) == "bot"


def test_outages_do_not_count_towards_setting_aside(channel, monkeypatch):
    message_id = store(channel)

    def down(_message_id: int) -> str:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(inbound, "_process_one", down)
    for _ in range(10):
        with pytest.raises(OperationalError):
            inbound.inbound_message_process(message_id=message_id)

    message = Message.objects.get(pk=message_id)
    assert (message.attempts, message.processed_at, message.failure_reason) == (0, None, "")


# Eager, as a worker runs it: Celery closes a connection left inside a transaction around a task.
@pytest.mark.django_db(transaction=True)
def test_the_task_retries_an_outage_but_leaves_a_bug_to_the_sweeper(channel, poison, monkeypatch):
    """A bug is tried again by the sweeper, within INBOUND_MAX_ATTEMPTS, not in a retry loop."""
    from apps.conversations import tasks

    broken = store(channel, wa_id="5215550003")
    poison.add(broken)
    blinked = store(channel, wa_id="5215550004")
    real = inbound._process_one
    outages = [OperationalError("server closed the connection unexpectedly")]

    def once_down(message_id: int) -> str:
        if message_id == blinked and outages:
            raise outages.pop()
        return real(message_id)

    monkeypatch.setattr(inbound, "_process_one", once_down)

    failed = tasks.inbound_message_process.apply((broken,))
    retried = tasks.inbound_message_process.apply((blinked,))

    assert failed.failed() and isinstance(failed.result, ValueError)
    assert Message.objects.get(pk=broken).attempts == 1  # one try, then the sweeper's turn
    assert (retried.get(), Message.objects.get(pk=blinked).attempts) == ("bot", 1)


def test_a_message_whose_every_attempt_killed_its_worker_is_set_aside_without_another_try(channel, poison):
    message_id = store(channel)
    Message.objects.filter(pk=message_id).update(attempts=3)  # three tries that never came back
    poison.add(message_id)  # would raise if it were tried again

    result = inbound.inbound_message_process(message_id=message_id)

    message = Message.objects.get(pk=message_id)
    assert result == "set_aside"
    assert message.failure_reason == inbound.SET_ASIDE
    assert "worker lost" in message.last_error


def test_a_set_aside_message_can_be_processed_again_once_fixed(
    channel, poison, tasks_captured, django_capture_on_commit_callbacks
):
    message_id = store(channel)
    poison.add(message_id)
    Message.objects.filter(pk=message_id).update(attempts=2)
    inbound.inbound_message_process(message_id=message_id)
    poison.clear()  # the fault is fixed

    with django_capture_on_commit_callbacks(execute=True):
        inbound.inbound_reprocess(message=Message.objects.get(pk=message_id))
    reset = Message.objects.get(pk=message_id)
    result = inbound.inbound_message_process(message_id=message_id)

    assert (reset.processed_at, reset.attempts, reset.failure_reason) == (None, 0, "")
    assert tasks_captured.ids("inbound.message_process") == [message_id]
    assert result == "bot"


def test_only_set_aside_messages_can_be_processed_again(channel):
    message_id = store(channel)
    inbound.inbound_message_process(message_id=message_id)

    with pytest.raises(Conflict):
        inbound.inbound_reprocess(message=Message.objects.get(pk=message_id))


def test_the_admin_action_processes_set_aside_messages_again(
    client, channel, tasks_captured, django_capture_on_commit_callbacks
):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    aside = store(channel, wa_id="5215550001")
    fine = store(channel, wa_id="5215550002")
    Message.objects.filter(pk=aside).update(processed_at=timezone.now(), failure_reason=inbound.SET_ASIDE)
    inbound.inbound_message_process(message_id=fine)
    listed = client.get("/admin/conversations/message/?failure_reason=processing_failed")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/conversations/message/", {"action": "reprocess", "_selected_action": [aside, fine]}
        )

    assert (
        listed.status_code == 200
        and f"/admin/conversations/message/{aside}/change/" in listed.content.decode()
    )
    assert response.status_code == 302
    assert tasks_captured.ids("inbound.message_process") == [aside]
    assert Message.objects.get(pk=aside).processed_at is None
    assert Message.objects.get(pk=fine).processed_at is not None


def test_a_set_aside_message_shows_in_its_senders_conversation_which_goes_to_a_person(channel, poison):
    first = store(channel, "hola")
    inbound.inbound_message_process(message_id=first)
    conversation = Conversation.objects.get()
    bad = store(channel, "mensaje que rompe algo")
    poison.add(bad)
    Message.objects.filter(pk=bad).update(attempts=2)

    result = inbound.inbound_message_process(message_id=bad)

    conversation.refresh_from_db()
    assert result == "set_aside"
    assert Message.objects.get(pk=bad).conversation == conversation
    assert conversation.status == Conversation.Status.PENDING_HUMAN  # the bot stays out of it
    assert conversation.unread_count == 2


def test_a_new_customers_first_message_set_aside_stays_out_of_any_conversation(channel, poison):
    bad = store(channel, "primer mensaje", wa_id="5215550999")
    poison.add(bad)
    Message.objects.filter(pk=bad).update(attempts=2)

    inbound.inbound_message_process(message_id=bad)

    assert Message.objects.get(pk=bad).conversation is None
    assert not Conversation.objects.exists()
