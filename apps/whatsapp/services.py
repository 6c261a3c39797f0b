"""Writes for channels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.conversations.services.ingest import inbound_store, preferences_apply, statuses_apply
from apps.whatsapp.models import Channel
from apps.whatsapp.payloads import ChannelBatch


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


def webhook_delivery_store(*, routed: list[tuple[Channel, ChannelBatch]], seen_precision: timedelta) -> None:
    """All of one delivery or nothing, so that the re-delivery after a failure finds nothing half-written."""
    stale = timezone.now() - seen_precision
    with transaction.atomic():
        for channel, batch in routed:
            if batch.messages:
                inbound_store(channel=channel, messages=batch.messages)
            if batch.statuses:
                statuses_apply(channel=channel, updates=batch.statuses)
            if batch.preferences:
                preferences_apply(channel=channel, updates=batch.preferences)
        seen = [c.pk for c, _ in routed if c.last_webhook_at is None or c.last_webhook_at < stale]
        if seen:
            channel_webhook_seen(channel_ids=seen)


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
        phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID,
        defaults=values,
        create_defaults={**values, "name": "WhatsApp"},
    )
    return f"{'created' if created else 'updated'} Cloud channel {channel.phone_number_id}"
