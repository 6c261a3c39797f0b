"""Reads of alerts, always within one workspace; `*_get` answers NotFound alike for a missing id and
another workspace's."""

from __future__ import annotations

from django.db.models import Min, QuerySet

from apps.accounts.models import Workspace
from apps.alerts.models import Alert, AlertRule
from chatbot.exceptions import NotFound


def alert_rule_list(
    *, workspace: Workspace, kind: str = "", is_active: bool | None = None
) -> QuerySet[AlertRule]:
    rules = AlertRule.objects.filter(workspace=workspace)
    if kind:
        rules = rules.filter(kind=kind)
    if is_active is not None:
        rules = rules.filter(is_active=is_active)
    return rules.order_by("pk")


def alert_rule_get(*, workspace: Workspace, pk: int) -> AlertRule:
    rule = AlertRule.objects.filter(workspace=workspace, pk=pk).first()
    if rule is None:
        raise NotFound("Not found.")
    return rule


def alert_list(
    *,
    workspace: Workspace,
    state: str = "",
    severity: str = "",
    kind: str = "",
    rule: int | None = None,
    conversation: int | None = None,
    assignee: int | None = None,
) -> QuerySet[Alert]:
    """Newest first."""
    alerts = Alert.objects.filter(workspace=workspace).select_related(
        "assignee", "acknowledged_by", "resolved_by"
    )
    if state:
        alerts = alerts.filter(state=state)
    if severity:
        alerts = alerts.filter(severity=severity)
    if kind:
        alerts = alerts.filter(kind=kind)
    if rule is not None:
        alerts = alerts.filter(rule_id=rule)
    if conversation is not None:
        alerts = alerts.filter(conversation_id=conversation)
    if assignee is not None:
        alerts = alerts.filter(assignee_id=assignee)
    return alerts.order_by("-created_at", "-pk")


def alert_get(*, workspace: Workspace, pk: int) -> Alert:
    alert = alert_list(workspace=workspace).filter(pk=pk).first()
    if alert is None:
        raise NotFound("Not found.")
    return alert


def alert_open_count(*, workspace: Workspace) -> int:
    """The dashboard's badge."""
    return Alert.objects.filter(workspace=workspace, state=Alert.State.OPEN).count()


def no_answer_rules() -> list[tuple[int, int]]:
    """(workspace id, the shortest wait of its active no-answer rules): one pass per workspace, whose
    facts carry each conversation's wait for every rule to judge."""
    rows = (
        AlertRule.objects.filter(is_active=True, kind=AlertRule.Kind.NO_ANSWER)
        .values("workspace_id")
        .annotate(shortest=Min("minutes"))
        .values_list("workspace_id", "shortest")
    )
    return sorted(rows)


def delivery_failure_windows() -> list[tuple[int, int]]:
    """(workspace id, window in minutes) of the active delivery-failure rules, each pair once: the
    rules sharing a window judge the same measurement."""
    rows = AlertRule.objects.filter(is_active=True, kind=AlertRule.Kind.DELIVERY_FAILURES).values_list(
        "workspace_id", "minutes"
    )
    return sorted(set(rows))


def llm_sentiment_alert_exists(*, message_id: int) -> bool:
    """Whether a sentiment rule scored by the LLM raised on this message already."""
    return Alert.objects.filter(
        message_id=message_id, kind=AlertRule.Kind.SENTIMENT, rule__classifier=AlertRule.Classifier.LLM
    ).exists()
