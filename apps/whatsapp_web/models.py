from __future__ import annotations

from django.db import models


class WebSession(models.Model):
    """The WhatsApp Web session of a channel of kind `web`, as the worker-web process last saw it."""

    class State(models.TextChoices):
        STARTING = "starting", "Starting"
        QR = "qr", "Waiting for the QR code to be scanned"
        SYNCING = "syncing", "Syncing"
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected"
        LOGGED_OUT = "logged_out", "Logged out"
        CONFLICT = "conflict", "Opened elsewhere"
        BLOCKED = "blocked", "Blocked"
        OUTDATED = "outdated", "Outdated WhatsApp Web"
        STOPPED = "stopped", "Stopped"

    channel = models.OneToOneField("whatsapp.Channel", on_delete=models.CASCADE, related_name="web_session")
    state = models.CharField(max_length=16, choices=State.choices, default=State.STARTING)
    detail = models.CharField(max_length=255, blank=True)
    # The QR payload WhatsApp Web shows (it rotates); only while the state is `qr`.
    qr = models.TextField(blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    whatsapp_version = models.CharField(max_length=32, blank=True)
    reconnects = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"web session of channel {self.channel_id}: {self.state}"
