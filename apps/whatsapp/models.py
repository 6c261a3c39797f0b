from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from chatbot.crypto import EncryptedTextField, lookup_digests

DEFAULT_SEND_RATE = 80  # messages per second, Meta's default per business number
MAX_SEND_RATE = 1000
# lookup_digests() purpose of Channel.verify_token_digest (a label, not a secret)
VERIFY_TOKEN_PURPOSE = "whatsapp.verify_token"  # noqa: S105


class Channel(models.Model):
    """One WhatsApp number of a workspace, and how we reach it."""

    class Kind(models.TextChoices):
        CLOUD = "cloud", "Cloud API"
        WEB = "web", "WhatsApp Web"
        SANDBOX = "sandbox", "Sandbox"

    class Health(models.TextChoices):
        UNKNOWN = "unknown", "Unknown"
        OK = "ok", "OK"
        UNHEALTHY = "unhealthy", "Unhealthy"

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CLOUD)
    name = models.CharField(max_length=120, blank=True)
    phone_number_id = models.CharField(max_length=64, blank=True, help_text="Meta's id; routes webhooks.")
    display_phone_number = models.CharField(max_length=32, blank=True)
    waba_id = models.CharField(max_length=64, blank=True)
    send_rate = models.PositiveIntegerField(
        default=DEFAULT_SEND_RATE,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SEND_RATE)],
        help_text="Messages per second this number may send (Meta: 80 by default, up to 1,000).",
    )
    messaging_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Meta's messaging limit: distinct customers this number may start conversations with in a rolling "
            "24 h (250, 2,000, 10,000, 100,000); empty for unlimited. Campaigns wait for the next window."
        ),
    )
    quality_event = models.CharField(
        max_length=32,
        blank=True,
        help_text="Meta's last phone_number_quality_update event (FLAGGED, UPGRADE, ...).",
    )
    quality_changed_at = models.DateTimeField(null=True, blank=True)
    app_secret = EncryptedTextField(blank=True)
    access_token = EncryptedTextField(blank=True)
    verify_token = EncryptedTextField(blank=True)
    # The webhook handshake finds the channel by this (chatbot.crypto.lookup_digests), not by
    # decrypting every channel's token; kept by save().
    verify_token_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    is_active = models.BooleanField(default=True)
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    health_detail = models.CharField(max_length=255, blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["phone_number_id"],
                condition=~models.Q(phone_number_id=""),
                name="whatsapp_channel_pnid_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.display_phone_number or self.phone_number_id or f"channel {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.verify_token_digest = (
            lookup_digests(self.verify_token, purpose=VERIFY_TOKEN_PURPOSE)[0] if self.verify_token else ""
        )
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "verify_token" in update_fields:
            kwargs["update_fields"] = {*update_fields, "verify_token_digest"}
        super().save(*args, **kwargs)
