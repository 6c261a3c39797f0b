"""Actions of an alert: e-mail, the signed webhook with retries and its delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.core import mail

from apps.alerts import notifications, tasks
from apps.alerts.models import WebhookDelivery
from apps.alerts.rules import Facts
from apps.alerts.services import alerts_evaluate
from apps.alerts.tests.factories import AlertFactory, AlertRuleFactory
from chatbot.exceptions import TransientError

pytestmark = pytest.mark.django_db


def _signed_by(secret: str, received) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-alert-signature"], expected)


def test_an_alert_queues_its_e_mail_and_webhook_after_commit(
    tasks_captured, django_capture_on_commit_callbacks
):
    rule = AlertRuleFactory.create(
        notify_emails=["ops@example.com"], webhook_url="https://hooks.example.com/a", webhook_secret="k"
    )
    facts = Facts(
        workspace_id=rule.workspace_id,
        channel_id=None,
        conversation_id=None,
        conversation_status="",
        text="reembolso",
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [alert] = alerts_evaluate(facts=facts).alerts
        assert tasks_captured.of() == []  # nothing leaves before the commit

    for callback in callbacks:
        callback()
    assert sorted(call.name for call in tasks_captured.of()) == [
        "default.alert_email_send",
        "default.alert_webhook_deliver",
    ]
    assert tasks_captured.ids("default.alert_webhook_deliver") == [alert.pk]


def test_the_e_mail_goes_to_the_rule_s_addresses_with_what_matched(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = AlertFactory.create(rule__notify_emails=["a@example.com", "b@example.com"], summary="reembolso")

    sent = notifications.alert_email_send(alert_id=alert.pk)

    [email] = mail.outbox
    assert sent == 2 and email.to == ["a@example.com", "b@example.com"]
    assert alert.rule_name in email.subject and "reembolso" in email.body


def test_the_webhook_is_signed_and_logged(alert_receiver):
    alert = AlertFactory.create(rule__webhook_url=alert_receiver.url, rule__webhook_secret="hook-secret")

    outcome = notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)

    [received] = alert_receiver.received
    payload = json.loads(received.body)
    assert outcome == "delivered"
    assert _signed_by("hook-secret", received)
    assert (payload["id"], payload["severity"], payload["summary"]) == (alert.pk, "high", "reembolso")
    assert received.headers["x-alert-delivery"] == str(alert.pk)
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.number, delivery.outcome, delivery.status_code) == (1, "delivered", 200)
    assert delivery.finished_at is not None


def test_a_5xx_is_retried_by_the_task_with_backoff_and_each_try_is_logged(alert_receiver):
    alert = AlertFactory.create(rule__webhook_url=alert_receiver.url, rule__webhook_secret="k")
    alert_receiver.answer_next(503, 502)

    with pytest.raises(TransientError):
        notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)
    with pytest.raises(TransientError):
        notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)
    notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)

    log = list(WebhookDelivery.objects.order_by("number").values_list("number", "outcome", "status_code"))
    assert log == [(1, "retry", 503), (2, "retry", 502), (3, "delivered", 200)]
    assert len(alert_receiver.received) == 3
    task = tasks.alert_webhook_deliver
    assert TransientError in task.autoretry_for and task.retry_backoff and task.retry_jitter


def test_the_last_try_and_a_4xx_fail_for_good_without_raising(alert_receiver):
    alert = AlertFactory.create(rule__webhook_url=alert_receiver.url, rule__webhook_secret="k")
    alert_receiver.answer_next(500, 404)

    last = notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=True)
    refused = notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)

    assert (last, refused) == ("failed", "failed")
    assert list(WebhookDelivery.objects.order_by("number").values_list("outcome", "status_code")) == [
        ("failed", 500),
        ("failed", 404),
    ]


def test_a_webhook_to_a_private_address_is_never_called(settings):
    settings.EGRESS_ALLOWED_NETWORKS = []
    alert = AlertFactory.create(rule__webhook_url="http://127.0.0.1:9/x", rule__webhook_secret="k")

    outcome = notifications.alert_webhook_deliver(alert_id=alert.pk, last_try=False)

    assert outcome == "failed"
    assert WebhookDelivery.objects.get().detail.startswith("127.0.0.1")
