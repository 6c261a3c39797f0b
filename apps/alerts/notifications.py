"""Writes that notify people of an alert outside the dashboard: e-mail and the signed webhook.

Called by the tasks (after the alert's commit). A webhook try is saved `in_flight` before the call
and settled with its outcome, so the delivery log shows every try, even one whose worker died.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.alerts.models import Alert, WebhookDelivery
from apps.alerts.webhook import WebhookRefused, webhook_post
from chatbot.exceptions import TransientError

logger = logging.getLogger(__name__)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """What a webhook receives: the alert, never the customer's text (only what matched, in summary)."""
    return {
        "id": alert.pk,
        "workspace": alert.workspace_id,
        "rule": alert.rule_id,
        "rule_name": alert.rule_name,
        "kind": alert.kind,
        "severity": alert.severity,
        "summary": alert.summary,
        "channel": alert.channel_id,
        "conversation": alert.conversation_id,
        "message": alert.message_id,
        "state": alert.state,
        "created_at": alert.created_at.isoformat(),
    }


def alert_email_send(*, alert_id: int) -> int:
    """E-mail the rule's addresses; the number of e-mails sent (0 when the alert or rule is gone)."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None or alert.rule is None or not alert.rule.notify_emails:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("[%(severity)s] Alert: %(rule)s") % {
            "severity": alert.get_severity_display(),
            "rule": alert.rule_name,
        }
        lines = [
            _("Rule: %(rule)s") % {"rule": alert.rule_name},
            _("Matched: %(summary)s") % {"summary": alert.summary},
        ]
        if alert.conversation_id:
            lines.append(_("Conversation: /conversations/%(id)s/") % {"id": alert.conversation_id})
    send_mail(
        subject=subject[:200],
        message="\n".join(lines),
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=list(alert.rule.notify_emails),
        fail_silently=False,
    )
    return len(alert.rule.notify_emails)


def alert_webhook_deliver(*, alert_id: int, last_try: bool) -> str:
    """One try at the rule's webhook. Raises TransientError when a later try may succeed (the task
    retries with backoff); returns the outcome otherwise."""
    alert = Alert.objects.select_related("rule").filter(pk=alert_id).first()
    if alert is None or alert.rule is None or not alert.rule.webhook_url:
        return "skipped"
    rule = alert.rule
    number = (WebhookDelivery.objects.filter(alert=alert).aggregate(n=Max("number"))["n"] or 0) + 1
    delivery = WebhookDelivery.objects.create(
        workspace_id=alert.workspace_id,
        alert=alert,
        number=number,
        url=rule.webhook_url,
        started_at=timezone.now(),
    )
    outcome, status_code, detail = WebhookDelivery.Outcome.DELIVERED, None, ""
    try:
        status_code = webhook_post(
            url=rule.webhook_url,
            secret=rule.webhook_secret,
            payload=alert_payload(alert),
            delivery_id=str(alert.pk),
        )
    except TransientError as exc:
        outcome = WebhookDelivery.Outcome.FAILED if last_try else WebhookDelivery.Outcome.RETRY
        detail = exc.message
        status_code = (exc.details or {}).get("status")
    except WebhookRefused as exc:
        outcome, detail = WebhookDelivery.Outcome.FAILED, exc.message
        status_code = (exc.details or {}).get("status")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        outcome=outcome, status_code=status_code, detail=detail[:500], finished_at=timezone.now()
    )
    if outcome == WebhookDelivery.Outcome.RETRY:
        raise TransientError(detail)
    if outcome == WebhookDelivery.Outcome.FAILED:
        logger.warning("alert %s: webhook failed for good (%s)", alert_id, detail)
    return outcome
