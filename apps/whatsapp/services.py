"""Writes for channels."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.whatsapp.models import Channel


def channel_health_set(*, channel: Channel, healthy: bool, detail: str = "") -> bool:
    """Record the channel's health; True when it changed (only changes are written)."""
    health = Channel.Health.OK if healthy else Channel.Health.UNHEALTHY
    changed = (
        Channel.objects.filter(pk=channel.pk)
        .exclude(health=health, health_detail=detail[:255])
        .update(health=health, health_detail=detail[:255], health_changed_at=timezone.now())
    )
    channel.health, channel.health_detail = health, detail[:255]
    return bool(changed)


def channel_webhook_seen(*, channel_ids: list[int]) -> None:
    Channel.objects.filter(pk__in=channel_ids).update(last_webhook_at=timezone.now())


def channel_bootstrap(*, workspace: Any) -> str:
    """Create or update the Cloud channel described by the WHATSAPP_* variables, when they are set."""
    if not settings.WHATSAPP_PHONE_NUMBER_ID:
        return ""
    values = {
        "workspace": workspace,
        "kind": Channel.Kind.CLOUD,
        "app_secret": settings.WHATSAPP_APP_SECRET,
        "access_token": settings.WHATSAPP_ACCESS_TOKEN,
        "verify_token": settings.WHATSAPP_VERIFY_TOKEN,
        "is_active": True,
    }
    channel, created = Channel.objects.update_or_create(
        phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID, defaults=values, create_defaults={**values, "name": "WhatsApp"}
    )
    return f"{'created' if created else 'updated'} Cloud channel {channel.phone_number_id}"
