"""Alerts end to end with real processes: a customer's message reaches the signed WhatsApp webhook
(live server), a Celery worker processes it, the rules raise alerts, and the worker posts each to
the business's signed alert webhook. Needs PostgreSQL and Redis."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from apps.alerts import services
from apps.alerts.models import Alert, AlertRule, WebhookDelivery
from apps.conversations.models import Message
from tests.test_pipeline_worker import APP_SECRET, make_channel, wait_for, worker

__all__ = ["worker"]  # the fixture, shared with the pipeline's worker tests


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_keyword_rule_and_a_regex_rule_raise_alerts_posted_to_the_signed_webhook(
    worker, graph_standin, alert_receiver, live_server, cloud_settings
):
    channel = make_channel("2040")
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    common = {"webhook_url": alert_receiver.url, "webhook_secret": "e2e-secret", "actor_id": None}
    services.alert_rule_create(
        workspace_id=channel.workspace_id,
        name="Refunds",
        kind=AlertRule.Kind.KEYWORD,
        keywords=["reembolso"],
        severity="high",
        **common,
    )
    services.alert_rule_create(
        workspace_id=channel.workspace_id,
        name="Order numbers",
        kind=AlertRule.Kind.REGEX,
        pattern=r"pedido\s*#?\d{4,}",
        severity="low",
        **common,
    )

    graph_standin.inject_inbound("2040", "5215550400", "Quiero un reembolso, ¡ya!", name="Eva")
    graph_standin.inject_inbound("2040", "5215550400", "Es el PEDIDO #4711", name="Eva")

    def both_posted() -> bool:
        """both alerts reached the business's webhook"""
        return len(alert_receiver.received) >= 2

    wait_for(both_posted)
    alerts = {alert.rule_name: alert for alert in Alert.objects.all()}
    assert set(alerts) == {"Refunds", "Order numbers"}
    refund_message = Message.objects.get(body="Quiero un reembolso, ¡ya!")
    assert alerts["Refunds"].message_id == refund_message.pk
    assert alerts["Order numbers"].summary == "PEDIDO #4711"
    payloads = {}
    for received in alert_receiver.received:
        expected = "sha256=" + hmac.new(b"e2e-secret", received.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(received.headers["x-alert-signature"], expected)
        payload = json.loads(received.body)
        payloads[payload["rule_name"]] = payload
    assert payloads["Refunds"]["severity"] == "high"
    assert payloads["Order numbers"]["message"] == alerts["Order numbers"].message_id
    assert WebhookDelivery.objects.filter(outcome="delivered").count() == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_sentiment_rule_raises_on_the_angry_message_only_and_hands_the_conversation_to_a_person(
    worker, graph_standin, alert_receiver, live_server, cloud_settings
):
    channel = make_channel("2041")
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    services.alert_rule_create(
        workspace_id=channel.workspace_id,
        actor_id=None,
        name="Angry customers",
        kind=AlertRule.Kind.SENTIMENT,
        threshold=-0.3,
        severity="high",
        hand_to_person=True,
        webhook_url=alert_receiver.url,
        webhook_secret="e2e-secret",
    )

    graph_standin.inject_inbound("2041", "5215550410", "Hola, ¿abren el sábado?", name="Luis")
    graph_standin.inject_inbound(
        "2041", "5215550410", "La app NO funciona y nadie me contesta 😡", name="Luis"
    )

    def posted() -> bool:
        """the angry message's alert reached the business's webhook"""
        return len(alert_receiver.received) >= 1

    wait_for(posted)
    [alert] = Alert.objects.all()
    angry = Message.objects.get(body="La app NO funciona y nadie me contesta 😡")
    assert (alert.kind, alert.message_id, alert.severity) == ("sentiment", angry.pk, "high")
    assert alert.summary.startswith("sentiment -0.") and "no funciona" in alert.summary
    payload = json.loads(alert_receiver.received[0].body)
    assert (payload["kind"], payload["message"]) == ("sentiment", angry.pk)
    assert "nadie me contesta" not in alert_receiver.received[0].body.decode()
    angry.conversation.refresh_from_db()
    assert angry.conversation.status == "pending_human"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_sentiment_rule_scored_by_the_llm_raises_after_the_worker_asked_the_providers(
    worker, graph_standin, alert_receiver, llm_standin, standin_providers, live_server, cloud_settings
):
    channel = make_channel("2042")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0.2)
    llm_standin.answer = "negative"
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    services.alert_rule_create(
        workspace_id=channel.workspace_id,
        actor_id=None,
        name="Unhappy (LLM)",
        kind=AlertRule.Kind.SENTIMENT,
        classifier=AlertRule.Classifier.LLM,
        webhook_url=alert_receiver.url,
        webhook_secret="e2e-secret",
    )

    # The lexicon sees no complaint word here; the LLM is asked on the llm queue.
    graph_standin.inject_inbound("2042", "5215550420", "Me llegó otro producto que no pedí", name="Rosa")

    def posted() -> bool:
        """the LLM-scored alert reached the business's webhook"""
        return len(alert_receiver.received) >= 1

    wait_for(posted)
    [alert] = Alert.objects.all()
    message = Message.objects.get(body="Me llegó otro producto que no pedí")
    assert (alert.message_id, alert.summary) == (message.pk, "sentiment -0.80 (LLM)")
    classified = [r for r in llm_standin.chat_requests() if "negative if the customer" in r.texts[0][1]]
    assert [r.texts[-1][1] for r in classified] == ["Me llegó otro producto que no pedí"]
