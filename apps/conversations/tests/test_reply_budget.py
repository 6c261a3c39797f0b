"""A reply that always fails stops: REPLY_MAX_ATTEMPTS tries per customer turn, counted in the
database, then the conversation goes to a person; only outages are retried (issue 11, item 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import knowledge
from apps.conversations import tasks
from apps.conversations.events import InboundMessage
from apps.conversations.models import Conversation, Message
from apps.conversations.services import actions, replies
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.conversations.services.sweeper import sweep
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db

C = Conversation.Status
_ids = iter(range(10**6))


class WorkerKilled(BaseException):
    """What a worker killed mid-call looks like from inside: no answer, no except clause runs."""


@pytest.fixture(autouse=True)
def _isolated(settings, tasks_captured):
    settings.REPLY_MAX_ATTEMPTS = 3
    knowledge.cache_clear()
    yield
    knowledge.cache_clear()


@pytest.fixture
def channel():
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="4004")


@pytest.fixture
def llm_calls(monkeypatch):
    """generate_reply, counted; `failures` holds what each next call raises (then the real one)."""
    from apps.assistant import reply

    real = reply.generate_reply
    calls: list[str] = []
    failures: list[BaseException] = []
    always: list[BaseException] = []

    def counted(request):
        calls.append(request.turn_key)
        if failures:
            raise failures.pop(0)
        if always:
            raise always[0]
        return real(request)

    monkeypatch.setattr(reply, "generate_reply", counted)
    return calls, failures, always


def customer_says(channel, body: str, *, minutes_ago: int = 3) -> Message:
    item = InboundMessage(
        wamid=f"wamid.budget.{next(_ids)}",
        type="text",
        timestamp=timezone.now(),
        from_wa_id="5215550300",
        from_name="Rosa",
        body=body,
        raw={"type": "text", "text": {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    inbound_message_process(message_id=message_id)
    # Old enough for the sweeper to call the turn unanswered (it waits 2 minutes).
    Message.objects.filter(pk=message_id).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return Message.objects.get(pk=message_id)


def _given_up() -> float:
    return REGISTRY.get_sample_value("chatbot_conversations_reply_given_up_total") or 0.0


# The task runs as a worker runs it (eager): around it Celery closes a connection inside a
# transaction, so these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_a_reply_that_always_fails_is_tried_at_most_the_budget_then_a_person_has_it(
    channel, llm_calls, tasks_captured
):
    """Given a bug that breaks every reply to a turn, when the debounced task runs and then the
    sweeper keeps looking (every 30 s for an hour), the LLM is asked 3 times in all, the task never
    retries the bug itself, and the conversation waits for a person, left alone by the sweeper."""
    calls, _, always = llm_calls
    always.append(ValueError("cannot build the prompt"))
    message = customer_says(channel, "¿Hacen envíos?")
    before = _given_up()

    states = [tasks.reply_generate.apply((message.conversation_id, message.pk)).state]
    sweeps = 0
    for _ in range(10):  # five minutes of sweeps, far more than the budget
        sweeps += 1
        tasks_captured.calls.clear()
        if not sweep(processing_timeout=timedelta(minutes=10))["turns"]:
            break
        [requeued] = tasks_captured.of("llm.reply_generate")
        states.append(tasks.reply_generate.apply(requeued.args).state)

    message.refresh_from_db()
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert calls == [f"reply:{message.pk}"] * 3
    assert states == ["FAILURE", "FAILURE", "SUCCESS"]
    # The third sweep found nothing to re-queue.
    assert sweeps == 3 and tasks_captured.of("llm.reply_generate") == []
    assert (conversation.status, message.reply_attempts) == (C.PENDING_HUMAN, 3)
    assert message.last_error == "ValueError: cannot build the prompt"
    assert _given_up() - before == 1
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()


def test_the_last_try_hands_the_conversation_over_and_says_so(channel, llm_calls):
    calls, _, always = llm_calls
    always.append(KeyError("profile"))
    message = customer_says(channel, "hola")

    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(
                replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
            )
        except KeyError:
            outcomes.append("raised")
    after = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert outcomes == ["raised", "raised", "gave_up"]
    assert after == "superseded"  # the turn is left for a person: nothing asks the LLM again
    assert len(calls) == 3


# The task runs as a worker runs it (eager): around it Celery closes a connection inside a
# transaction, so these tests commit for real.
@pytest.mark.django_db(transaction=True)
def test_a_transient_error_is_retried_by_the_task_and_not_counted(
    channel, llm_calls, llm_standin, standin_providers
):
    """Given the database blinking during the first try, the task retries (backoff, jitter) and the
    customer is answered; the outage does not spend the turn's budget."""
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Sí, a toda la península."
    calls, failures, _ = llm_calls
    failures.append(OperationalError("server closed the connection unexpectedly"))
    message = customer_says(channel, "¿Hacen envíos?")

    result = tasks.reply_generate.apply((message.conversation_id, message.pk))

    message.refresh_from_db()
    [reply] = Message.objects.filter(conversation_id=message.conversation_id, author=Message.Author.BOT)
    assert result.get() == "replied"
    assert len(calls) == 2
    assert message.reply_attempts == 1  # the answered try only
    assert reply.body == "Sí, a toda la península."
    assert Conversation.objects.get(pk=message.conversation_id).status == C.OPEN


def test_the_count_survives_workers_killed_mid_reply(channel, llm_calls):
    """Given three workers killed while asking the LLM (the broker hands the task on each time),
    the count is in the database: the next run hands the turn to a person without a fourth call."""
    calls, failures, _ = llm_calls
    failures.extend([WorkerKilled(), WorkerKilled(), WorkerKilled()])
    message = customer_says(channel, "¿Tienen talla M?")

    for _ in range(3):
        with pytest.raises(WorkerKilled):
            replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
    outcome = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    message.refresh_from_db()
    assert outcome == "gave_up"
    assert len(calls) == 3
    assert message.reply_attempts == 4
    assert message.last_error == "every attempt ended without an answer"
    assert Conversation.objects.get(pk=message.conversation_id).status == C.PENDING_HUMAN


def test_the_next_turn_after_a_hand_back_has_a_fresh_budget(
    channel, llm_calls, llm_standin, standin_providers
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Claro."
    calls, failures, _ = llm_calls
    failures.extend([ValueError("bug")] * 3)
    first = customer_says(channel, "hola")
    for _ in range(2):
        with pytest.raises(ValueError):
            replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk)
    assert replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk) == "gave_up"
    conversation = Conversation.objects.get(pk=first.conversation_id)
    actions.conversation_handback(conversation=conversation, user=None)

    second = customer_says(channel, "¿sigue ahí?", minutes_ago=0)
    outcome = replies.reply_generate(conversation_id=second.conversation_id, message_id=second.pk)

    second.refresh_from_db()
    assert (outcome, second.reply_attempts, len(calls)) == ("replied", 1, 4)
