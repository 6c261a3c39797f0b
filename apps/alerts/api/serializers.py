from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.accounts.models import User
from apps.alerts.models import SYSTEM_KINDS, Alert, AlertRule, Severity
from apps.alerts.sentiment import NEGATIVE_BELOW
from apps.alerts.services import CONVERSATION_STATUSES, MAX_EMAILS, MAX_PHRASE_LENGTH, MAX_PHRASES
from chatbot.openapi import input_schema
from chatbot.serializers import JSONInput, QueryInput

MAX_ID = 2**63 - 1  # ids are BigAutoField
MAX_MINUTES = 7 * 24 * 60
K = AlertRule.Kind


def _phrases(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=MAX_PHRASE_LENGTH),
        max_length=MAX_PHRASES,
        help_text="Words or phrases, matched as whole words without case or accents.",
        **kwargs,
    )


_PHRASE_ITEMS = {"items": {"pattern": r"\w"}}  # services refuse a phrase without a word in it


class _RuleFields(JSONInput):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=K.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    is_active = serializers.BooleanField(default=True)
    keywords = _phrases(default=list)
    exclusions = _phrases(default=list)
    pattern = serializers.CharField(
        max_length=500,
        allow_blank=True,
        trim_whitespace=False,
        default="",
        help_text="regex rules: a regular expression, matched without case, with a time budget.",
    )
    minutes = serializers.IntegerField(
        min_value=0,
        max_value=MAX_MINUTES,
        default=0,
        help_text="no_answer: minutes waiting for a person; delivery_failures: the window measured.",
    )
    rate = serializers.FloatField(
        min_value=0, max_value=1, default=0.0, help_text="delivery_failures: failed/sent above this share."
    )
    min_count = serializers.IntegerField(
        min_value=0, max_value=1_000_000, default=0, help_text="delivery_failures: sends needed to judge."
    )
    threshold = serializers.FloatField(
        min_value=-1,
        max_value=1,
        default=NEGATIVE_BELOW,
        help_text="sentiment: a customer message scoring below this (-1 furious .. 1 delighted; "
        "a sentiment rule's is above -1 and below 0) raises the alert.",
    )
    classifier = serializers.ChoiceField(
        choices=AlertRule.Classifier.choices,
        default=AlertRule.Classifier.LEXICON,
        help_text="sentiment: 'lexicon' scores offline as the message is processed; 'llm' asks the "
        "workspace's LLM providers afterwards (a call per message; off by default).",
    )
    channels = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        max_length=50,
        default=list,
        help_text="Channel ids of this workspace; empty: every channel.",
    )
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=CONVERSATION_STATUSES),
        max_length=len(CONVERSATION_STATUSES),
        default=list,
        help_text="Conversation statuses; empty: every status.",
    )
    cooldown_minutes = serializers.IntegerField(min_value=0, max_value=MAX_MINUTES, default=30)
    notify_emails = serializers.ListField(
        child=serializers.EmailField(max_length=254), max_length=MAX_EMAILS, default=list
    )
    webhook_url = serializers.CharField(max_length=500, allow_blank=True, default="")
    webhook_secret = serializers.CharField(
        max_length=200, allow_blank=True, default="", help_text="Signs the webhook body; never shown back."
    )
    hand_to_person = serializers.BooleanField(
        default=False, help_text="Also move an open conversation to 'waiting for a person'."
    )


def _implies(condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    """ "condition -> then" in OpenAPI 3.0's JSON Schema (no if/then): not condition, or then."""
    return {"anyOf": [{"not": condition}, then]}


def _kind_is(kind: str) -> dict[str, Any]:
    return {"required": ["kind"], "properties": {"kind": {"enum": [kind]}}}


# What a rule of each kind needs (services check the same).
_KIND_NEEDS = {
    "allOf": [
        _implies(
            _kind_is(K.KEYWORD), {"required": ["keywords"], "properties": {"keywords": {"minItems": 1}}}
        ),
        _implies(_kind_is(K.REGEX), {"required": ["pattern"], "properties": {"pattern": {"minLength": 1}}}),
        _implies(_kind_is(K.NO_ANSWER), {"required": ["minutes"], "properties": {"minutes": {"minimum": 1}}}),
        _implies(
            _kind_is(K.DELIVERY_FAILURES),
            {
                "required": ["minutes", "rate"],
                "properties": {
                    "minutes": {"minimum": 1},
                    "rate": {"minimum": 0, "exclusiveMinimum": True},
                },
            },
        ),
        _implies(
            _kind_is(K.SENTIMENT),
            {
                "properties": {
                    "threshold": {
                        "minimum": -1,
                        "exclusiveMinimum": True,
                        "maximum": 0,
                        "exclusiveMaximum": True,
                    }
                }
            },
        ),
        _implies(
            {"required": ["webhook_url"], "properties": {"webhook_url": {"minLength": 1}}},
            {"required": ["webhook_secret"], "properties": {"webhook_secret": {"minLength": 1}}},
        ),
    ]
}


@input_schema(fields={"keywords": _PHRASE_ITEMS, "exclusions": _PHRASE_ITEMS}, whole=_KIND_NEEDS)
class AlertRuleInput(_RuleFields):
    """A new rule. What each kind needs: keyword, `keywords`; regex, `pattern`; no_answer, `minutes`;
    delivery_failures, `minutes` and `rate`; sentiment, a `threshold` above -1 and below 0 (default
    -0.3). A webhook needs its secret."""


@input_schema(fields={"keywords": _PHRASE_ITEMS, "exclusions": _PHRASE_ITEMS})
class AlertRuleUpdateInput(_RuleFields):
    """Fields left out keep their value; the rule as a whole must still hold (see the create)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class AlertRuleFilter(QueryInput):
    kind = serializers.ChoiceField(choices=K.choices, required=False)
    is_active = serializers.ChoiceField(choices=["true", "false"], required=False)


class AlertRuleOutput(serializers.ModelSerializer[AlertRule]):
    kind = serializers.ChoiceField(choices=K.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    classifier = serializers.ChoiceField(choices=AlertRule.Classifier.choices)
    keywords = serializers.ListField(child=serializers.CharField())
    exclusions = serializers.ListField(child=serializers.CharField())
    channels = serializers.ListField(child=serializers.IntegerField())
    statuses = serializers.ListField(child=serializers.ChoiceField(choices=CONVERSATION_STATUSES))
    notify_emails = serializers.ListField(child=serializers.CharField())
    webhook_secret_set = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
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
            "webhook_secret_set",
            "hand_to_person",
            "created_at",
            "updated_at",
        ]

    def get_webhook_secret_set(self, rule: AlertRule) -> bool:
        return bool(rule.webhook_secret)


class AlertFilter(QueryInput):
    state = serializers.ChoiceField(choices=Alert.State.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    kind = serializers.ChoiceField(choices=K.choices + SYSTEM_KINDS, required=False)
    rule = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    conversation = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    assignee = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text="A user id.")


class AlertUserOutput(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username"]


class AlertOutput(serializers.ModelSerializer[Alert]):
    kind = serializers.ChoiceField(choices=K.choices + SYSTEM_KINDS)
    severity = serializers.ChoiceField(choices=Severity.choices)
    state = serializers.ChoiceField(choices=Alert.State.choices)
    assignee = AlertUserOutput(allow_null=True)
    acknowledged_by = AlertUserOutput(allow_null=True)
    resolved_by = AlertUserOutput(allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "rule_name",
            "kind",
            "severity",
            "summary",
            "channel",
            "conversation",
            "message",
            "state",
            "assignee",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "created_at",
        ]


@input_schema(whole={"required": ["assignee"]})
class AlertAssignInput(JSONInput):
    """Who handles the alert."""

    assignee = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, allow_null=True, help_text="A member's user id; null: nobody."
    )
