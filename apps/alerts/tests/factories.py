from __future__ import annotations

import factory

from apps.accounts.tests.factories import WorkspaceFactory
from apps.alerts.models import Alert, AlertRule, Severity


class AlertRuleFactory(factory.django.DjangoModelFactory[AlertRule]):
    """A keyword rule. Made with the ORM: a test that evaluates calls `rules_forget()` (conftest)."""

    class Meta:
        model = AlertRule

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = AlertRule.Kind.KEYWORD
    keywords = factory.LazyFunction(lambda: ["reembolso"])
    severity = Severity.HIGH
    cooldown_minutes = 30


class AlertFactory(factory.django.DjangoModelFactory[Alert]):
    class Meta:
        model = Alert

    rule = factory.SubFactory(AlertRuleFactory)
    workspace = factory.SelfAttribute("rule.workspace")
    rule_name = factory.SelfAttribute("rule.name")
    kind = factory.SelfAttribute("rule.kind")
    severity = factory.SelfAttribute("rule.severity")
    summary = "reembolso"
