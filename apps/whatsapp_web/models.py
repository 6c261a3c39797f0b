from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class WebSession(models.Model):
    """The WhatsApp Web session of a channel of kind `web`, as the worker-web process last saw it."""

    class State(models.TextChoices):
        STARTING = "starting", _("Starting")
        QR = "qr", _("Waiting for the QR code to be scanned")
        SYNCING = "syncing", _("Syncing")
        CONNECTED = "connected", _("Connected")
        DISCONNECTED = "disconnected", _("Disconnected")
        LOGGED_OUT = "logged_out", _("Logged out")
        CONFLICT = "conflict", _("Opened elsewhere")
        BLOCKED = "blocked", _("Blocked")
        OUTDATED = "outdated", _("Outdated WhatsApp Web")
        STOPPED = "stopped", _("Stopped")

    channel = models.OneToOneField("whatsapp.Channel", on_delete=models.CASCADE, related_name="web_session")
    state = models.CharField(max_length=16, choices=State.choices, default=State.STARTING)
    detail = models.CharField(max_length=255, blank=True)
    # The QR payload WhatsApp Web shows (it rotates); only while the state is `qr`.
    qr = models.TextField(blank=True)
    # The 8-character code for linking by phone number instead (asked from the dashboard); only while
    # the state is `qr`.
    pairing_code = models.CharField(max_length=16, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    whatsapp_version = models.CharField(max_length=32, blank=True)
    reconnects = models.PositiveIntegerField(default=0)
    # Which worker-web process drives the channel, until when (database time): renewed every few seconds
    # by its owner, taken by another process once it has passed (services.web_leases_hold).
    owner = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"web session of channel {self.channel_id}: {self.state}"
