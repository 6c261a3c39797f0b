"""Calendar connections, bookable services and bookings.

Two active bookings of one calendar never overlap: each booking claims the 5-minute slots it blocks
(buffers included) as `BookingSlot` rows under a unique (calendar_key, start), so the database refuses
the second of two concurrent bookings on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from chatbot.crypto import EncryptedTextField

SLOT_MINUTES = 5  # the grain of bookings: durations, buffers and start times are multiples of it
REMINDER_HOURS_MAX = 168  # a week


def default_reminder_hours() -> list[int]:
    return [24, 2]


class Connection(models.Model):
    """A workspace's link to one Google or Outlook calendar, with its encrypted credentials."""

    class Provider(models.TextChoices):
        GOOGLE = "google", "Google Calendar"
        MICROSOFT = "microsoft", "Outlook / Microsoft 365"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        RECONNECT_NEEDED = "reconnect_needed", "Reconnect needed"
        DISCONNECTED = "disconnected", "Disconnected"

    workspace = models.ForeignKey(
        "accounts.Workspace", on_delete=models.CASCADE, related_name="calendar_connections"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    account_email = models.CharField(max_length=320)
    calendar_id = models.CharField(max_length=255, default="primary")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    # Google: the token JSON (access, refresh, expiry, scopes); Microsoft: msal's serialized token cache.
    token = EncryptedTextField(blank=True, default="")
    # Microsoft: msal's home_account_id, to find the account in the cache.
    account_key = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider", "account_email", "calendar_id"],
                name="calendar_connection_unique_calendar",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.account_email} ({self.status})"

    @property
    def calendar_key(self) -> str:
        return f"connection:{self.pk}"


class PendingAuthorization(models.Model):
    """A started connect flow: the OAuth `state`, bound to the staff member's login session."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=128, help_text="The login session that started the flow.")
    provider = models.CharField(max_length=16, choices=Connection.Provider.choices)
    state = models.CharField(max_length=128, unique=True)
    redirect_uri = models.CharField(max_length=500)
    # Google: the PKCE code verifier; Microsoft: msal's auth code flow (JSON, verifier and nonce inside).
    secret = EncryptedTextField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.provider} connect by user {self.user_id}"


class Service(models.Model):
    """Something a customer can book: how long it takes and the rules of its calendar."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=120)
    duration_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(SLOT_MINUTES), MaxValueValidator(24 * 60)]
    )
    buffer_before_minutes = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(240)])
    buffer_after_minutes = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(240)])
    price = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="services"
    )
    min_notice_minutes = models.PositiveIntegerField(default=60)
    horizon_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    daily_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most bookings of this service in one local day; empty: no cap."
    )
    is_active = models.BooleanField(default=True)
    reminder_hours = models.JSONField(
        default=default_reminder_hours,
        blank=True,
        help_text="Hours before the appointment a reminder goes out (e.g. [24, 2]); empty: no reminders.",
    )
    reminder_template = models.CharField(
        max_length=512,
        blank=True,
        help_text="The approved template (its name) for reminders outside the 24-hour window; "
        "empty: such reminders are skipped.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    @property
    def calendar_key(self) -> str:
        """Which calendar's slots this service's bookings claim (the workspace's own without a calendar)."""
        return f"connection:{self.connection_id}" if self.connection_id else f"workspace:{self.workspace_id}"


class Booking(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        # No usable calendar (none, or reconnect needed): a person confirms it.
        PENDING = "pending", "Waiting for a person to confirm"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.CONFIRMED, Status.PENDING)

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="bookings")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="bookings")
    contact = models.ForeignKey(
        "conversations.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    customer_name = models.CharField(max_length=255, blank=True)
    customer_phone = models.CharField(max_length=32, blank=True)
    start = models.DateTimeField(help_text="UTC.")
    end = models.DateTimeField(help_text="UTC.")
    status = models.CharField(max_length=16, choices=Status.choices)
    calendar_key = models.CharField(max_length=64)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    external_event_id = models.CharField(max_length=1024, blank=True)
    idempotency_key = models.CharField(max_length=64)
    rescheduled_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rescheduled_to"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="calendar_booking_unique_idempotency_key"
            ),
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="calendar_booking_ends_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "start"]),
            models.Index(fields=["calendar_key", "start"]),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.start:%Y-%m-%d %H:%M} ({self.status})"


class BookingSlot(models.Model):
    """One 5-minute slot an active booking blocks; the unique key is the no-overlap rule."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="slots")
    calendar_key = models.CharField(max_length=64)
    start = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["calendar_key", "start"], name="calendar_slot_taken_once"),
        ]

    def __str__(self) -> str:
        return f"{self.calendar_key} {self.start:%Y-%m-%d %H:%M}"


class BookingReminder(models.Model):
    """One reminder of one booking: its unique row is what makes it go out at most once."""

    class Status(models.TextChoices):
        SENT = "sent", "Queued for sending"
        SKIPPED = "skipped", "Skipped"

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="reminders")
    hours_before = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.CharField(max_length=255, blank=True, help_text="Why it was skipped.")
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["booking", "hours_before"], name="calendar_reminder_once"),
        ]

    def __str__(self) -> str:
        return f"{self.booking_id} -{self.hours_before}h ({self.status})"
