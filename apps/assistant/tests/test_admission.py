"""LLM call admission: a provider's rate and concurrency bounds and each workspace's share, in the shared
store (real Redis here, as between worker processes), and what a reply does when it may not call yet."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import admission, providers
from apps.assistant.models import ReplyUsage
from apps.conversations.models import Message
from apps.conversations.services import replies
from apps.conversations.tests.test_replies import customer_says
from apps.whatsapp.models import Channel


@pytest.fixture
def shared(settings, redis_url):
    """The Redis-backed store every worker shares, with quota keys of this test only."""
    settings.REDIS_URL = redis_url
    settings.LLM_RATE_HEADROOM = 1.0
    return f"llm:test-{uuid.uuid4().hex}"


def test_calls_to_a_provider_at_its_rpm_are_spaced_by_its_interval(settings, shared):
    settings.LLM_PROVIDER_RPM = {"gemini": 600}  # one call every 0.1 s

    started = time.monotonic()
    waits = []
    for _ in range(3):
        with admission.admitted(provider="gemini", quota_key=shared, workspace_id=1) as waited:
            waits.append(round(waited, 1))
    elapsed = time.monotonic() - started

    assert waits == [0.0, 0.1, 0.1]
    assert 0.18 <= elapsed < 0.5


def test_a_rate_slot_further_away_than_the_slot_wait_defers_without_taking_it(settings, shared):
    settings.LLM_PROVIDER_RPM = {"gemini": 15}  # Gemini's free tier: one call every 4 s
    settings.LLM_MAX_SLOT_WAIT = 1.0
    with admission.admitted(provider="gemini", quota_key=shared, workspace_id=1):
        pass

    with pytest.raises(admission.Deferred) as deferred:
        with admission.admitted(provider="gemini", quota_key=shared, workspace_id=1):
            pytest.fail("admitted 4 s too early")

    assert deferred.value.reason == "provider_rate"
    assert 2.5 < deferred.value.countdown <= 3.0  # the slot is ~4 s away, 1 s of it may be waited
    with pytest.raises(admission.Deferred):  # the refused ask took no slot: the next is as far
        with admission.admitted(provider="gemini", quota_key=shared, workspace_id=1):
            pass


def test_a_workspace_at_its_in_flight_share_is_deferred_while_another_is_admitted(settings, shared):
    settings.LLM_WORKSPACE_MAX_IN_FLIGHT = 2
    busy, other = WorkspaceFactory.build(pk=10**6 + 1), WorkspaceFactory.build(pk=10**6 + 2)

    with (
        admission.admitted(provider="openai", quota_key=shared, workspace_id=busy.pk),
        admission.admitted(provider="openai", quota_key=shared, workspace_id=busy.pk),
    ):
        with pytest.raises(admission.Deferred) as deferred:
            with admission.admitted(provider="openai", quota_key=shared, workspace_id=busy.pk):
                pytest.fail("a third call in flight for the busy workspace")
        with admission.admitted(provider="openai", quota_key=shared, workspace_id=other.pk) as waited:
            assert waited == 0.0

    assert (deferred.value.reason, deferred.value.countdown) == ("workspace_in_flight", 1.0)
    with admission.admitted(provider="openai", quota_key=shared, workspace_id=busy.pk):
        pass  # the places came back when the calls ended


def test_a_provider_at_its_concurrency_defers_the_next_call(settings, shared):
    settings.LLM_PROVIDER_CONCURRENCY = {"ollama": 1}

    with admission.admitted(provider="ollama", quota_key=shared, workspace_id=1):
        with pytest.raises(admission.Deferred) as deferred:
            with admission.admitted(provider="ollama", quota_key=shared, workspace_id=2):
                pass

    assert deferred.value.reason == "provider_concurrency"


@pytest.fixture
def channel(db):
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="3113")


def test_a_reply_over_its_workspaces_share_is_requeued_without_calling_or_spending_the_customers_pace(
    channel, llm_standin, standin_providers, settings, tasks_captured, django_capture_on_commit_callbacks
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    settings.LLM_WORKSPACE_MAX_IN_FLIGHT = 1
    settings.INBOUND_REPLY_RATE = "1/60"
    message = customer_says(channel, "hola")
    tasks_captured.calls.clear()

    with (
        admission.admitted(
            provider="openai_compatible", quota_key="other", workspace_id=channel.workspace_id
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
    again = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert result == "deferred"
    scheduled = [(call.args, call.countdown) for call in tasks_captured.of("llm.reply_generate")]
    assert scheduled == [((message.conversation_id, message.pk), 1.0)]
    assert again == "replied"  # the deferred try gave back the customer's one reply a minute
    assert len(llm_standin.chat_requests()) == 1
    assert ReplyUsage.objects.count() == 1
    assert Message.objects.filter(author=Message.Author.BOT).count() == 1


@pytest.mark.usefixtures("postgres")
@pytest.mark.django_db(transaction=True)
def test_no_database_connection_is_held_while_the_model_thinks(
    llm_standin, standin_providers, monkeypatch, tasks_captured
):
    channel = Channel.objects.create(
        workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="3114"
    )
    standin_providers(channel.workspace_id, ["openai_compatible"])
    message = customer_says(channel, "hola")
    during_call: list[bool] = []
    real_complete = providers.complete

    def complete(*args, **kwargs):
        during_call.append(connection.connection is None)
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(providers, "complete", complete)

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert result == "replied"
    assert during_call == [True]
