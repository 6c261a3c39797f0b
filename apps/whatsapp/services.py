"""Writes for channels."""

from __future__ import annotations

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
