"""Alert rules per workspace, the alerts they raise, and the log of their outgoing webhooks.

Conversations, messages and channels are named by string: alerts evaluates plain data handed to it by
`conversations` and imports no domain app above `accounts`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chatbot.crypto import EncryptedTextField


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        KEYWORD = "keyword", "Keyword"
        REGEX = "regex", "Regular expression"
        NO_ANSWER = "no_answer", "No answer while waiting for a person"
        ASKED_FOR_PERSON = "asked_for_person", "The customer asked for a person"
        PROVIDERS_FAILED = "providers_failed", "Every LLM provider failed"
        DELIVERY_FAILURES = "delivery_failures", "Delivery failures above a rate"
        SENTIMENT = "sentiment", "Negative sentiment"

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    is_active = models.BooleanField(default=True)
    # keyword: words or phrases matched as whole words, without case or accents; any exclusion vetoes.
    keywords = models.JSONField(default=list, blank=True)
    exclusions = models.JSONField(default=list, blank=True)
    # regex: on chatbot.safe_regex (bounded size and matching time).
    pattern = models.CharField(max_length=500, blank=True)
    # no_answer: minutes waiting; delivery_failures: the window the rate is measured over.
    minutes = models.PositiveIntegerField(default=0)
    # delivery_failures: failed / sent in the window above this share, once at least `min_count` were sent.
    rate = models.FloatField(default=0.0)
    min_count = models.PositiveIntegerField(default=0)
    # sentiment: a customer message scoring below this (-1 furious .. 1 delighted) raises the alert.
    threshold = models.FloatField(default=-0.3)

    class Classifier(models.TextChoices):
        LEXICON = "lexicon", "Offline lexicon"
        LLM = "llm", "The workspace's LLM providers"

    # sentiment: who scores. The LLM is asked on the llm queue after the message is processed.
    classifier = models.CharField(max_length=8, choices=Classifier.choices, default=Classifier.LEXICON)
    # Scope: empty means every channel / every conversation status.
    channels = models.JSONField(default=list, blank=True, help_text="Channel ids; empty: all.")
    statuses = models.JSONField(default=list, blank=True, help_text="Conversation statuses; empty: all.")
    cooldown_minutes = models.PositiveIntegerField(
        default=30, help_text="No second alert of this rule for the same conversation within this time."
    )
    # Actions besides the dashboard's live badge (always on).
    notify_emails = models.JSONField(default=list, blank=True)
    webhook_url = models.CharField(
        max_length=500, blank=True, help_text="http(s); checked by the egress rules."
    )
    webhook_secret = EncryptedTextField(blank=True, help_text="Signs the webhook body (HMAC-SHA256).")
    hand_to_person = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "is_active"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


# Alerts the platform raises itself, with no rule (staff cannot create rules of these kinds).
CAMPAIGN_STOPPED = "campaign_stopped"
CALENDAR_RECONNECT = "calendar_reconnect"
WHATSAPP_WEB_SESSION_LOST = "whatsapp_web_lost"
SYSTEM_KINDS = [
    (CAMPAIGN_STOPPED, "WhatsApp stopped a campaign"),
    (CALENDAR_RECONNECT, "A calendar needs reconnecting"),
    (WHATSAPP_WEB_SESSION_LOST, "A WhatsApp Web number needs linking again"),
]


class Alert(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="alerts")
    # The alert outlives its rule (history); the rule's name and kind are kept on it.
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    rule_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=AlertRule.Kind.choices + SYSTEM_KINDS)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    channel = models.ForeignKey(
        "whatsapp.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary = models.CharField(max_length=255, help_text="What matched (a keyword, a pattern, a rate).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "state", "-created_at"]),
            # The cool-down's look-up: this rule's latest alert for this conversation.
            models.Index(fields=["rule", "conversation", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.severity} {self.rule_name}: {self.summary}"


class WebhookDelivery(models.Model):
    """One try at posting an alert to its rule's webhook, saved before the call (like SendAttempt)."""

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        DELIVERED = "delivered", "Delivered"
        RETRY = "retry", "Failed, retried later"
        FAILED = "failed", "Failed for good"

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="webhook_deliveries")
    number = models.PositiveSmallIntegerField()
    url = models.CharField(max_length=500)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "number"], name="alerts_webhook_alert_number_uniq")
        ]

    def __str__(self) -> str:
        return f"webhook {self.number} of alert {self.alert_id}: {self.outcome}"
