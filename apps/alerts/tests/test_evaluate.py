"""Rules evaluated in the pipeline: inbound processing, the reply's provider failures and the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.alerts import services
from apps.alerts.models import Alert, AlertRule
from apps.alerts.tests.factories import AlertRuleFactory
from apps.conversations.events import InboundMessage
from apps.conversations.models import Conversation, Message
from apps.conversations.services import alerting
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.conversations.services.replies import _queue
from apps.conversations.tests.factories import ConversationFactory, outbound_message
from apps.live.models import LiveEvent
from apps.whatsapp.models import Channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]
K = AlertRule.Kind
_counter = iter(range(10**6))


@pytest.fixture
def channel():
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="4001")


def receive(channel, body, *, type="text", raw=None, wa_id="5215550001"):
    item = InboundMessage(
        wamid=f"wamid.alert.{next(_counter)}",
        type=type,
        timestamp=timezone.now(),
        from_wa_id=wa_id,
        from_name="Ana",
        body=body,
        raw=raw or {"type": type, type: {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    outcome = inbound_message_process(message_id=message_id)
    return Message.objects.get(pk=message_id), outcome


def test_a_keyword_in_a_customer_message_raises_one_alert_linked_to_it_with_a_live_event(channel):
    AlertRuleFactory.create(workspace=channel.workspace, name="Refunds", keywords=["reembolso"])

    message, outcome = receive(channel, "Quiero un REEMBOLSO")

    [alert] = Alert.objects.all()
    assert outcome == "bot"  # the reply goes on as before
    assert (alert.workspace_id, alert.message_id, alert.conversation_id, alert.channel_id) == (
        channel.workspace_id,
        message.pk,
        message.conversation_id,
        channel.pk,
    )
    assert (alert.rule_name, alert.kind, alert.severity, alert.summary, alert.state) == (
        "Refunds",
        "keyword",
        "high",
        "reembolso",
        "open",
    )
    assert LiveEvent.objects.filter(kind="alert", payload__alert_id=alert.pk).count() == 1


def test_a_regex_rule_raises_on_a_caption(channel):
    AlertRuleFactory.create(workspace=channel.workspace, kind=K.REGEX, keywords=[], pattern=r"roto|rota")
    raw = {"type": "image", "image": {"id": "9", "caption": "La caja llegó rota"}}

    message, _ = receive(channel, "La caja llegó rota", type="image", raw=raw)

    assert list(Alert.objects.values_list("message_id", "summary")) == [(message.pk, "rota")]


def test_a_button_title_is_matched_too(channel):
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["queja"])
    raw = {"type": "button", "button": {"payload": "complaint", "text": "Poner una queja"}}

    receive(channel, "Poner una queja", type="button", raw=raw)

    assert Alert.objects.count() == 1


def test_a_reaction_and_another_workspace_s_rules_raise_nothing(channel):
    AlertRuleFactory.create(keywords=["reembolso"])  # another workspace's rule
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["👍"])  # no word: never matches

    receive(channel, "reembolso")
    receive(channel, "👍", type="reaction", raw={"type": "reaction", "reaction": {"emoji": "👍"}})

    assert Alert.objects.count() == 0


def test_the_cool_down_holds_one_alert_per_conversation_and_rule(channel):
    rule = AlertRuleFactory.create(workspace=channel.workspace, keywords=["reembolso"], cooldown_minutes=30)

    receive(channel, "reembolso")
    receive(channel, "REEMBOLSO ya")
    receive(channel, "reembolso", wa_id="5215550002")  # another customer: another conversation

    assert Alert.objects.filter(rule=rule).count() == 2
    Alert.objects.update(created_at=timezone.now() - timedelta(minutes=31))
    receive(channel, "reembolso!!")
    assert Alert.objects.filter(rule=rule).count() == 3


def test_an_inactive_rule_and_one_scoped_to_other_statuses_raise_nothing(channel):
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["reembolso"], is_active=False)
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["reembolso"], statuses=["human"])

    receive(channel, "reembolso")

    assert Alert.objects.count() == 0


def test_asking_for_a_person_raises_its_alert(channel):
    AlertRuleFactory.create(workspace=channel.workspace, kind=K.ASKED_FOR_PERSON, keywords=[])

    message, outcome = receive(channel, "Quiero hablar con un agente")

    assert outcome == "handoff"
    assert list(Alert.objects.values_list("kind", "message_id")) == [("asked_for_person", message.pk)]


def test_hand_to_person_moves_an_open_conversation_through_the_state_machine(channel):
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["abogado"], hand_to_person=True)

    message, outcome = receive(channel, "Hablaré con mi abogado")

    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.status == Conversation.Status.PENDING_HUMAN
    assert LiveEvent.objects.filter(kind="conversation", conversation_id=conversation.pk).exists()


def test_a_fault_in_the_rules_does_not_stop_the_message(channel, monkeypatch):
    AlertRuleFactory.create(workspace=channel.workspace, keywords=["reembolso"])

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(alerting, "alerts_evaluate", broken)

    message, outcome = receive(channel, "reembolso")

    assert outcome == "bot"
    assert message.processed_at is not None
    assert Alert.objects.count() == 0


def test_a_rule_changed_through_the_services_is_used_at_once(channel, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        rule = services.alert_rule_create(
            workspace_id=channel.workspace_id, actor_id=None, name="r", kind=K.KEYWORD, keywords=["uno"]
        )
    receive(channel, "dos")
    assert Alert.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        services.alert_rule_update(rule=rule, actor_id=None, keywords=["dos"])
    receive(channel, "dos", wa_id="5215550009")

    assert list(Alert.objects.values_list("summary", flat=True)) == ["dos"]


def test_every_provider_failing_raises_its_alert_after_the_offline_reply_is_queued():
    conversation = ConversationFactory.create()
    AlertRuleFactory.create(workspace=conversation.workspace, kind=K.PROVIDERS_FAILED, keywords=[])
    question = Message.objects.create(
        workspace=conversation.workspace,
        channel=conversation.channel,
        conversation=conversation,
        direction="in",
        author="customer",
        body="¿Abren hoy?",
    )

    outcome = _queue(
        conversation, "Una persona te responderá", "reply:x", handoff=False, providers_failed=question.pk
    )

    assert outcome == "replied"
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1
    assert list(Alert.objects.values_list("kind", "message_id")) == [("providers_failed", question.pk)]


def test_the_sweep_raises_no_answer_for_a_customer_waiting_longer_than_the_rule_says():
    waiting = ConversationFactory.create(
        status=Conversation.Status.PENDING_HUMAN, last_inbound_at=timezone.now() - timedelta(minutes=25)
    )
    workspace = waiting.workspace
    recent = ConversationFactory.create(
        channel=waiting.channel,
        status=Conversation.Status.PENDING_HUMAN,
        last_inbound_at=timezone.now() - timedelta(minutes=5),
    )
    bot = ConversationFactory.create(
        channel=waiting.channel, last_inbound_at=timezone.now() - timedelta(minutes=60)
    )
    AlertRuleFactory.create(workspace=workspace, kind=K.NO_ANSWER, keywords=[], minutes=20)
    AlertRuleFactory.create(workspace=workspace, kind=K.NO_ANSWER, keywords=[], minutes=60)

    first = alerting.alert_conditions_sweep()
    again = alerting.alert_conditions_sweep()

    assert first["no_answer"] == 1 and again["no_answer"] == 0  # the 60-minute rule waits; cool-down
    assert list(Alert.objects.values_list("conversation_id", flat=True)) == [waiting.pk]
    assert not Alert.objects.filter(conversation__in=[recent, bot]).exists()


def test_the_sweep_raises_delivery_failures_per_number_above_the_rate():
    conversation = ConversationFactory.create()
    AlertRuleFactory.create(
        workspace=conversation.workspace,
        kind=K.DELIVERY_FAILURES,
        keywords=[],
        minutes=15,
        rate=0.25,
        min_count=4,
    )
    for state in ("sent", "sent", "failed", "failed", "pending"):
        outbound_message(conversation=conversation, send_state=state)

    raised = alerting.alert_conditions_sweep()

    [alert] = Alert.objects.all()
    assert raised["delivery_failures"] == 1
    assert (alert.channel_id, alert.conversation_id) == (conversation.channel_id, None)
    assert alert.summary == "2 of 4 sends failed in 15 min (50%)"
    assert alerting.alert_conditions_sweep()["delivery_failures"] == 0  # cooling down


def test_a_sentiment_rule_raises_on_an_angry_message_or_caption_and_not_on_a_calm_one(channel):
    AlertRuleFactory.create(
        workspace=channel.workspace, name="Angry", kind=K.SENTIMENT, keywords=[], threshold=-0.3
    )
    raw = {"type": "image", "image": {"id": "9", "caption": "Llegó roto otra vez, qué vergüenza"}}

    calm, _ = receive(channel, "¿Abren el sábado? Gracias")
    angry, outcome = receive(
        channel, "Llegó roto otra vez, qué vergüenza", type="image", raw=raw, wa_id="5215550003"
    )

    [alert] = Alert.objects.all()
    assert outcome == "bot"
    assert (alert.message_id, alert.kind, alert.rule_name) == (angry.pk, "sentiment", "Angry")
    assert alert.summary.startswith("sentiment -0.") and "verguenza" in alert.summary
    assert not Alert.objects.filter(message=calm).exists()
