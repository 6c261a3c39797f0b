"""Sentiment rules scored by the workspace's LLM (`classifier: llm`): asked on the llm queue after the
message is processed, through the assistant's providers (here the LLM stand-in)."""

from __future__ import annotations

import pytest

from apps.alerts.models import Alert, AlertRule
from apps.alerts.tests.factories import AlertRuleFactory
from apps.alerts.tests.test_evaluate import receive
from apps.conversations.models import Conversation
from apps.conversations.services.alerting import alert_sentiment_by_llm

pytestmark = pytest.mark.django_db
K = AlertRule.Kind
TASK = "llm.alert_sentiment_classify"


@pytest.fixture
def channel():
    from apps.accounts.tests.factories import WorkspaceFactory
    from apps.whatsapp.models import Channel

    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="4101")


def _llm_rule(channel, **fields):
    values = {"name": "Angry (LLM)", "kind": K.SENTIMENT, "keywords": [], "threshold": -0.3}
    return AlertRuleFactory.create(workspace=channel.workspace, classifier="llm", **{**values, **fields})


def test_an_llm_rule_raises_nothing_while_the_message_is_processed_and_queues_the_llm_after_commit(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    _llm_rule(channel)

    with django_capture_on_commit_callbacks(execute=True):
        message, outcome = receive(channel, "Esto es una vergüenza")

    assert outcome == "bot"
    assert Alert.objects.count() == 0
    assert tasks_captured.ids(TASK) == [message.pk]


def test_a_lexicon_rule_queues_no_llm_call(channel, tasks_captured, django_capture_on_commit_callbacks):
    AlertRuleFactory.create(workspace=channel.workspace, kind=K.SENTIMENT, keywords=[])

    with django_capture_on_commit_callbacks(execute=True):
        receive(channel, "Esto es una vergüenza")

    assert tasks_captured.of(TASK) == []
    assert Alert.objects.filter(kind="sentiment").count() == 1


def test_the_llm_s_negative_raises_the_rule_once_and_hands_over(
    channel, tasks_captured, llm_standin, standin_providers
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    rule = _llm_rule(channel, hand_to_person=True, cooldown_minutes=0)
    lexicon = AlertRuleFactory.create(workspace=channel.workspace, kind=K.SENTIMENT, keywords=[])
    message, _ = receive(channel, "Me llegó otro producto que no pedí")  # the lexicon misses it
    llm_standin.answer = "Negative."

    first = alert_sentiment_by_llm(message_id=message.pk)
    again = alert_sentiment_by_llm(message_id=message.pk)

    [alert] = Alert.objects.all()
    assert (first, again) == ("raised 1", "done_already")
    assert (alert.rule_id, alert.message_id, alert.summary) == (rule.pk, message.pk, "sentiment -0.80 (LLM)")
    assert not Alert.objects.filter(rule=lexicon).exists()
    [request] = llm_standin.chat_requests()
    [(system, prompt), last] = request.texts
    assert last == ("user", "Me llegó otro producto que no pedí")
    assert system == "system" and "negative" in prompt
    assert Conversation.objects.get(pk=message.conversation_id).status == "pending_human"


@pytest.mark.parametrize("answer", ["neutral", "Positive", "I cannot tell"])
def test_an_answer_that_is_not_negative_raises_nothing(
    channel, tasks_captured, llm_standin, standin_providers, answer
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    _llm_rule(channel)
    message, _ = receive(channel, "Quiero cambiar la fecha")
    llm_standin.answer = answer

    outcome = alert_sentiment_by_llm(message_id=message.pk)

    assert outcome == ("unscored" if answer == "I cannot tell" else "raised 0")
    assert Alert.objects.count() == 0


def test_every_provider_failing_leaves_the_message_unscored(
    channel, tasks_captured, llm_standin, standin_providers
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    _llm_rule(channel)
    message, _ = receive(channel, "Es una estafa")
    llm_standin.fail_next(status=500)

    assert alert_sentiment_by_llm(message_id=message.pk) == "unscored"
    assert Alert.objects.count() == 0
