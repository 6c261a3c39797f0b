"""Writes of alerts: rules (CRUD), raising alerts from what the pipeline saw, and staff's handling.

`alerts_evaluate` is called by conversations inside its own transaction, with plain `Facts`; it
returns what conversations must apply (hand the conversation to a person). Notifications leave
after commit: the live badge rings then, e-mail and webhooks go to Celery tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership
from apps.alerts.models import SYSTEM_KINDS, Alert, AlertRule, Severity
from apps.alerts.rules import CompiledRule, Facts, matches, rule_compile, rules_version_bump, workspace_rules
from apps.audit.services import audit_record
from apps.live.services import live_publish
from chatbot.egress import check_url
from chatbot.exceptions import Conflict, ValidationFailed

K = AlertRule.Kind
CONVERSATION_STATUSES = ("open", "pending_human", "human", "closed")
MAX_PHRASES = 50
MAX_PHRASE_LENGTH = 100
MAX_EMAILS = 10
RULE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "severity",
        "is_active",
        "keywords",
        "exclusions",
        "pattern",
        "minutes",
        "rate",
        "min_count",
        "threshold",
        "classifier",
        "channels",
        "statuses",
        "cooldown_minutes",
        "notify_emails",
        "webhook_url",
        "webhook_secret",
        "hand_to_person",
    }
)
_WORDS = re.compile(r"\w")


# --- rules ------------------------------------------------------------------------------------------
def alert_rule_check(rule: AlertRule) -> None:
    """The rules across fields and stored rows; ValidationFailed names the field. Normalises the
    scope lists (sorted, each once)."""
    try:
        rule.channels = sorted({int(c) for c in rule.channels})
        rule.statuses = sorted({str(s) for s in rule.statuses})
    except (TypeError, ValueError):
        raise ValidationFailed(
            "Channels are ids and statuses names.", details={"channels": "invalid"}
        ) from None
    for field in ("keywords", "exclusions"):  # stored whatever the kind, so checked whatever the kind
        if any(not _WORDS.search(str(phrase)) for phrase in getattr(rule, field)):
            raise ValidationFailed(
                "Each keyword must contain a letter or a digit.", details={field: "no word"}
            )
    if rule.kind == K.KEYWORD and not rule.keywords:
        raise ValidationFailed("A keyword rule needs at least one keyword.", details={"keywords": "required"})
    if rule.kind == K.REGEX:
        if not rule.pattern:
            raise ValidationFailed("A regex rule needs a pattern.", details={"pattern": "required"})
        rule_compile(rule)  # ValidationFailed for a pattern that is too long or not valid
    if rule.kind == K.NO_ANSWER and rule.minutes < 1:
        raise ValidationFailed(
            "Say after how many minutes without an answer.", details={"minutes": "required"}
        )
    if rule.kind == K.DELIVERY_FAILURES and (rule.minutes < 1 or not 0 < rule.rate <= 1):
        raise ValidationFailed(
            "A delivery-failure rule needs a window in minutes and a rate above 0 and at most 1.",
            details={"minutes": "required", "rate": "required"},
        )
    if rule.kind == K.SENTIMENT and not -1 < rule.threshold < 0:
        raise ValidationFailed(
            "A sentiment rule needs a threshold above -1 and below 0.", details={"threshold": "out of range"}
        )
    bad = [status for status in rule.statuses if status not in CONVERSATION_STATUSES]
    if bad:
        raise ValidationFailed("Unknown conversation status.", details={"statuses": bad})
    if rule.channels:
        # By app label: alerts sits below whatsapp and does not import it.
        channel_model = apps.get_model("whatsapp", "Channel")
        known = set(
            channel_model.objects.filter(workspace_id=rule.workspace_id, pk__in=rule.channels).values_list(
                "pk", flat=True
            )
        )
        unknown = sorted(set(rule.channels) - known)
        if unknown:
            raise ValidationFailed("No such channel in this workspace.", details={"channels": unknown})
    for address in rule.notify_emails:
        try:
            validate_email(address)
        except DjangoValidationError:
            raise ValidationFailed(
                "Not a valid e-mail address.", details={"notify_emails": address}
            ) from None
    if rule.webhook_url:
        check_url(rule.webhook_url, base=False)
        if not rule.webhook_secret:
            raise ValidationFailed(
                "A webhook needs a secret to sign its body.", details={"webhook_secret": "required"}
            )


def _rule_save(rule: AlertRule, *, actor_id: int | None, action: str, changed: list[str]) -> AlertRule:
    alert_rule_check(rule)
    rule.save()
    audit_record(
        workspace_id=rule.workspace_id,
        actor_id=actor_id,
        action=action,
        target=rule,
        details={"fields": sorted(changed)},  # names only: the webhook secret is one of them
    )
    workspace_id = rule.workspace_id
    transaction.on_commit(lambda: rules_version_bump(workspace_id))
    return rule


@transaction.atomic
def alert_rule_create(*, workspace_id: int, actor_id: int | None, **fields: Any) -> AlertRule:
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    rule = AlertRule(workspace_id=workspace_id, **fields)
    return _rule_save(rule, actor_id=actor_id, action="alert_rule.create", changed=list(fields))


@transaction.atomic
def alert_rule_update(*, rule: AlertRule, actor_id: int | None, **fields: Any) -> AlertRule:
    """Fields left out keep their value."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(rule, name, value)
    return _rule_save(rule, actor_id=actor_id, action="alert_rule.update", changed=list(fields))


@transaction.atomic
def alert_rule_delete(*, rule: AlertRule, actor_id: int | None) -> None:
    """Its alerts stay (history), with the rule's name."""
    workspace_id = rule.workspace_id
    audit_record(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action="alert_rule.delete",
        target=rule,
        details={"name": rule.name},
    )
    rule.delete()
    transaction.on_commit(lambda: rules_version_bump(workspace_id))


# --- raising ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    alerts: tuple[Alert, ...] = ()
    hand_to_person: bool = False


NOTHING = Decision()


def _cooling_down(rule: CompiledRule, facts: Facts) -> bool:
    if not rule.cooldown_minutes:
        return False
    recent = Alert.objects.filter(
        rule_id=rule.id, created_at__gte=timezone.now() - timedelta(minutes=rule.cooldown_minutes)
    )
    if facts.conversation_id is not None:
        recent = recent.filter(conversation_id=facts.conversation_id)
    else:  # a channel's condition (delivery failures): once per channel
        recent = recent.filter(conversation__isnull=True, channel__isnull=facts.channel_id is None)
        if facts.channel_id is not None:
            recent = recent.filter(channel_id=facts.channel_id)
    return recent.exists()


def alerts_evaluate(*, facts: Facts) -> Decision:
    """Raise an alert for each of the workspace's rules that `facts` meet and that is not cooling down.

    Call it inside the transaction that handles the event, holding the conversation's row lock: two
    messages of one conversation are then evaluated one after the other, so the cool-down holds.
    """
    rules = workspace_rules(facts.workspace_id)
    if not rules:
        return NOTHING
    found = matches(rules, facts)
    if not found:
        return NOTHING
    raised: list[Alert] = []
    hand_over = False
    for rule, what in found:
        if _cooling_down(rule, facts):
            continue
        alert = Alert.objects.create(
            workspace_id=facts.workspace_id,
            rule_id=rule.id,
            rule_name=rule.name,
            kind=rule.kind,
            severity=rule.severity,
            channel_id=facts.channel_id,
            conversation_id=facts.conversation_id,
            message_id=facts.message_id,
            summary=what[:255],
        )
        raised.append(alert)
        hand_over = hand_over or rule.hand_to_person
        live_publish(
            workspace_id=facts.workspace_id,
            kind="alert",
            conversation_id=facts.conversation_id,
            payload={"alert_id": alert.pk, "severity": alert.severity},
        )
        _notify_after_commit(alert.pk, rule)
    return Decision(alerts=tuple(raised), hand_to_person=hand_over)


def alert_system_raise(
    *,
    workspace_id: int,
    kind: str,
    summary: str,
    severity: str = Severity.HIGH,
    channel_id: int | None = None,
) -> Alert:
    """An alert the platform raises itself (no rule: e.g. WhatsApp stopped a campaign): in the alerts
    inbox and the badge, live, like a rule's."""
    alert = Alert.objects.create(
        workspace_id=workspace_id,
        rule_name=dict(SYSTEM_KINDS)[kind],
        kind=kind,
        severity=severity,
        channel_id=channel_id,
        summary=summary[:255],
    )
    live_publish(
        workspace_id=workspace_id, kind="alert", payload={"alert_id": alert.pk, "severity": severity}
    )
    return alert


def _notify_after_commit(alert_id: int, rule: CompiledRule) -> None:
    from apps.alerts import tasks

    if rule.notify_email:
        transaction.on_commit(lambda: tasks.alert_email_send.delay(alert_id))
    if rule.webhook:
        transaction.on_commit(lambda: tasks.alert_webhook_deliver.delay(alert_id))


# --- staff's handling -------------------------------------------------------------------------------
S = Alert.State


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user_id: int) -> Alert:
    """Open -> acknowledged (who and when). Acknowledging again changes nothing; a resolved alert
    cannot be acknowledged."""
    now = timezone.now()
    if not Alert.objects.filter(pk=alert.pk, state=S.OPEN).update(
        state=S.ACKNOWLEDGED, acknowledged_by_id=user_id, acknowledged_at=now
    ):
        alert.refresh_from_db()
        if alert.state == S.RESOLVED:
            raise Conflict("The alert is resolved already.", code="alert_resolved")
        return alert
    _changed(alert, "alert.acknowledge", user_id)
    alert.refresh_from_db()
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, user_id: int) -> Alert:
    """Open or acknowledged -> resolved (who and when); resolving again changes nothing. Resolving an
    open alert also records it as acknowledged by the same person."""
    now = timezone.now()
    rows = Alert.objects.filter(pk=alert.pk).exclude(state=S.RESOLVED)
    rows.filter(acknowledged_at__isnull=True).update(acknowledged_by_id=user_id, acknowledged_at=now)
    if rows.update(state=S.RESOLVED, resolved_by_id=user_id, resolved_at=now):
        _changed(alert, "alert.resolve", user_id)
    alert.refresh_from_db()
    return alert


@transaction.atomic
def alert_assign(*, alert: Alert, assignee_id: int | None, user_id: int) -> Alert:
    """Give the alert to a member of its workspace, or to nobody (None)."""
    if (
        assignee_id is not None
        and not Membership.objects.filter(workspace_id=alert.workspace_id, user_id=assignee_id).exists()
    ):
        raise ValidationFailed("Not a member of this workspace.", details={"assignee": assignee_id})
    Alert.objects.filter(pk=alert.pk).update(assignee_id=assignee_id)
    _changed(alert, "alert.assign", user_id)
    alert.refresh_from_db()
    return alert


def _changed(alert: Alert, action: str, user_id: int) -> None:
    audit_record(workspace_id=alert.workspace_id, actor_id=user_id, action=action, target=alert)
    live_publish(
        workspace_id=alert.workspace_id,
        kind="alert",
        conversation_id=alert.conversation_id,
        payload={"alert_id": alert.pk, "severity": alert.severity},
    )
