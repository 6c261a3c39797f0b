"""Roll-ups: the big tables (messages, reply usage) counted per local day and hour of a workspace, so a
year of figures reads thousands of rows, not millions. Written only by services.rollup_refresh (beat);
the selectors add the rows newer than `RollupState.rolled_until` from the source tables themselves, so
figures are never behind. Rows with no channel are the workspace's totals over every channel."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class RollupState(models.Model):
    """How far a workspace's roll-ups reach, and in which time zone their days are."""

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    zone = models.CharField(max_length=64)
    rolled_until = models.DateTimeField(help_text="Rows created before this instant are counted.")
    refreshed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"roll-ups of {self.workspace_id} until {self.rolled_until:%Y-%m-%d %H:%M}"


class MessageRollup(models.Model):
    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(
        "whatsapp.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    hour = models.PositiveSmallIntegerField()
    direction = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    error_code = models.IntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=255, blank=True)
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "channel", "day"], name="analytics_msg_rollup_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.hour:02d}h {self.direction} {self.status}: {self.count}"


class ReplyRollup(models.Model):
    """Replies per day, provider, model and latency bin (services.LATENCY_RATIO apart): percentiles are
    read from the bins, within half a bin's width of the exact value."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(
        "whatsapp.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField()
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=128, blank=True)
    latency_bin = models.SmallIntegerField()
    replies = models.PositiveIntegerField()
    cache_hits = models.PositiveIntegerField()
    tried = models.PositiveIntegerField()
    fallbacks = models.PositiveIntegerField()
    tokens_in = models.BigIntegerField()
    tokens_out = models.BigIntegerField()
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    latency_ms_sum = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "channel", "day"], name="analytics_reply_rollup_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.provider} {self.model}: {self.replies}"


class ConversationFacts(models.Model):
    """A conversation's first customer, bot and staff messages, as of `computed_until`. Counted again
    when the conversation has a message after that (`Conversation.last_message_at`); the selectors
    read such a conversation from its messages meanwhile."""

    conversation = models.OneToOneField(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="analytics_facts",
    )
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    first_in = models.DateTimeField(null=True, blank=True)
    first_bot = models.DateTimeField(null=True, blank=True)
    first_staff = models.DateTimeField(null=True, blank=True)
    computed_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"facts of conversation {self.conversation_id}"
