"""Templates (Meta's approved message shapes), saved audiences, contact imports and campaigns."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Template(models.Model):
    """A message template of a WhatsApp Business Account, as Meta last told us (sync or webhook)."""

    class Category(models.TextChoices):
        MARKETING = "MARKETING", "Marketing"
        UTILITY = "UTILITY", "Utility"
        AUTHENTICATION = "AUTHENTICATION", "Authentication"

    class Status(models.TextChoices):
        # Meta's words (message_template_status_update `event`); Meta decides every move.
        PENDING = "PENDING", "Pending review"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"
        PAUSED = "PAUSED", "Paused"
        DISABLED = "DISABLED", "Disabled"
        IN_APPEAL = "IN_APPEAL", "In appeal"
        FLAGGED = "FLAGGED", "Flagged"
        PENDING_DELETION = "PENDING_DELETION", "Pending deletion"
        DELETED = "DELETED", "Deleted"
        ARCHIVED = "ARCHIVED", "Archived"
        LIMIT_EXCEEDED = "LIMIT_EXCEEDED", "Limit exceeded"
        REINSTATED = "REINSTATED", "Reinstated"

    class Quality(models.TextChoices):
        UNKNOWN = "UNKNOWN", "Unknown"
        GREEN = "GREEN", "High"
        YELLOW = "YELLOW", "Medium"
        RED = "RED", "Low"

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="templates")
    # Templates belong to the business account; the channel is the number whose token manages them.
    channel = models.ForeignKey(
        "whatsapp.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="templates"
    )
    waba_id = models.CharField(max_length=64)
    meta_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=16, choices=Category.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    quality = models.CharField(max_length=8, choices=Quality.choices, default=Quality.UNKNOWN)
    components = models.JSONField(default=list, blank=True)
    variable_count = models.PositiveSmallIntegerField(default=0, help_text="{{1}}..{{n}} of the body.")
    rejected_reason = models.CharField(max_length=255, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "waba_id", "name", "language"], name="campaigns_template_uniq"
            ),
        ]
        indexes = [models.Index(fields=["waba_id", "meta_id"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class Segment(models.Model):
    """A saved audience: a filter over the workspace's contacts, counted live (never a stored list)."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=120)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="campaigns_segment_name_uniq")
        ]

    def __str__(self) -> str:
        return self.name


class ContactImport(models.Model):
    """A CSV of contacts imported in the background (queue `campaigns`), with progress and row errors."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    MAX_ERRORS = 1000  # kept per import; the count goes on

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    data = models.BinaryField(help_text="The uploaded CSV; emptied once the import is done.")
    region = models.CharField(max_length=2, help_text="Region for numbers written without +country code.")
    tags = models.JSONField(default=list, blank=True, help_text="Added to every imported contact.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    failure = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"


class AudienceSettings(models.Model):
    """Per-workspace audience rules (one row per workspace, created on first use)."""

    workspace = models.OneToOneField(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="audience_settings"
    )
    default_region = models.CharField(
        max_length=2, help_text="ISO 3166 region for numbers without +country code (ES, MX, ...)."
    )

    class Meta:
        verbose_name_plural = "audience settings"  # not Django's "...settingss"

    def __str__(self) -> str:
        return f"audience settings of {self.workspace_id}"


class Campaign(models.Model):
    """A mass send of one approved template to an audience. Its status moves only through
    services.campaigns.campaign_move (TRANSITIONS there), never by a plain save."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    # Kept when the template, number or segment goes: a campaign's history still reads.
    template = models.ForeignKey(
        Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    channel = models.ForeignKey(
        "whatsapp.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    audience_filters = models.JSONField(
        default=dict,
        blank=True,
        help_text="The segment's filters as they were when the campaign was scheduled.",
    )
    variables = models.JSONField(
        default=list, blank=True, help_text="Where each {{n}} of the template comes from, per recipient."
    )
    header_variables = models.JSONField(
        default=list, blank=True, help_text="Where the {{1}} of a text header comes from, per recipient."
    )
    button_variables = models.JSONField(
        default=list,
        blank=True,
        help_text="Where the end of each URL button's link comes from, per recipient, in the buttons' order.",
    )
    header_media_url = models.URLField(
        max_length=1024,
        blank=True,
        help_text="The public https link of a media header's image, video or document.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(
        max_length=32, blank=True, help_text="staff, or what Meta said (spam_rate_limit, template_paused)."
    )
    failure = models.CharField(max_length=255, blank=True)
    # The runner (services/runner.py): recipients are written by the fan-out (keyset over the
    # audience, `fanout_cursor` = the last contact id done) and fed to the sender in waves.
    fanout_cursor = models.BigIntegerField(default=0)
    fanned_out_at = models.DateTimeField(null=True, blank=True)
    feed_token = models.CharField(max_length=32, blank=True, help_text="The live feed chain's token.")
    fed_at = models.DateTimeField(null=True, blank=True)
    waiting_reason = models.CharField(
        max_length=32, blank=True, help_text="Why nobody is being sent to now (messaging_limit)."
    )
    waiting_until = models.DateTimeField(null=True, blank=True)
    # A series: `recurrence` (cron, in the workspace's time zone) makes beat start a copy of it at
    # every occurrence (services/recurrence.py); each copy is a campaign of its own, with its parent.
    recurrence = models.CharField(max_length=64, blank=True, help_text="minute hour day month weekday")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    occurrence = models.DateTimeField(null=True, blank=True, help_text="The series' run this copy is.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="scheduled") | models.Q(scheduled_at__isnull=False),
                name="campaigns_campaign_scheduled_at_set",
            ),
            # A beat tick delivered twice starts one run.
            models.UniqueConstraint(fields=["parent", "occurrence"], name="campaigns_campaign_run_once"),
        ]
        # The scheduler's read: scheduled campaigns whose time has come.
        indexes = [models.Index(fields=["status", "scheduled_at"], name="campaigns_campaign_due")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Recipient(models.Model):
    """One contact of a campaign: written once by the fan-out (unique per campaign and contact, so a
    fan-out run again after a killed worker adds nobody twice), then fed to the sender as a message.
    Delivery (sent, delivered, read, failed with Meta's code) is the message's; `state` says only
    where the campaign is with this contact."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting to be sent")
        QUEUED = "queued", _("Handed to the sender")
        SKIPPED = "skipped", _("Skipped")
        CANCELLED = "cancelled", _("Cancelled")

    class Skip(models.TextChoices):
        OPTED_OUT = "opted_out", _("Opted out of marketing")
        NO_PHONE = "no_phone", _("No WhatsApp number")
        MISSING_VARIABLE = "missing_variable", _("A template variable has no value")

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey("conversations.Contact", on_delete=models.CASCADE, related_name="+")
    # The channel, copied: the messaging limit counts customers per number across campaigns.
    channel = models.ForeignKey("whatsapp.Channel", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    skip_reason = models.CharField(max_length=20, choices=Skip.choices, blank=True)
    parameters = models.JSONField(default=list, blank=True, help_text="The {{n}} values for this contact.")
    header_parameters = models.JSONField(default=list, blank=True, help_text="The text header's value.")
    button_parameters = models.JSONField(
        default=list, blank=True, help_text="The ends of the URL buttons' links, percent-encoded."
    )
    message = models.OneToOneField(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "contact"], name="campaigns_recipient_once"),
        ]
        indexes = [
            # The feed's read: the campaign's next waiting recipients, in order.
            models.Index(
                fields=["campaign", "id"],
                condition=models.Q(state="waiting"),
                name="campaigns_recipient_waiting",
            ),
            # The messaging limit's read: customers a number started in the last 24 h.
            models.Index(
                fields=["channel", "queued_at"],
                condition=models.Q(queued_at__isnull=False),
                name="campaigns_recipient_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.contact_id} ({self.state})"
