"""Writes for channels."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.audit.services import audit_record
from apps.conversations.services.ingest import inbound_store, preferences_apply, statuses_apply
from apps.whatsapp import cloud
from apps.whatsapp.models import DEFAULT_SEND_RATE, MAX_SEND_RATE, Channel
from apps.whatsapp.payloads import ChannelBatch
from apps.whatsapp.route_cache import ChannelRoute
from chatbot.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)


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


# When this process last wrote each channel's heartbeat: a cached route's last_webhook_at is as old as
# the route, so without this every delivery would find it stale.
_heartbeats: dict[int, datetime] = {}


def webhook_delivery_store(
    *, routed: list[tuple[ChannelRoute, ChannelBatch]], seen_precision: timedelta
) -> None:
    """All of one delivery or nothing, so that the re-delivery after a failure finds nothing half-written."""
    now = timezone.now()
    stale = now - seen_precision
    seen = [
        route.pk for route, _ in routed if max(_last_seen(route), _heartbeats.get(route.pk, stale)) <= stale
    ]
    # The common delivery (one number's messages, heartbeat fresh) is one INSERT: in autocommit it is
    # all or nothing already, and a transaction would add BEGIN and COMMIT round trips.
    single = len(routed) == 1 and not seen and not routed[0][1].statuses and not routed[0][1].preferences
    with nullcontext() if single else transaction.atomic():
        for channel, batch in routed:
            if batch.messages:
                inbound_store(channel=channel, messages=batch.messages)
            if batch.statuses:
                statuses_apply(channel=channel, updates=batch.statuses)
            if batch.preferences:
                preferences_apply(channel=channel, updates=batch.preferences)
        if seen:
            channel_webhook_seen(channel_ids=seen)
    for channel_id in seen:
        _heartbeats[channel_id] = now


def _last_seen(route: ChannelRoute) -> datetime:
    return route.last_webhook_at or datetime.min.replace(tzinfo=UTC)


def channel_webhook_seen(*, channel_ids: list[int]) -> None:
    Channel.objects.filter(pk__in=channel_ids).update(last_webhook_at=timezone.now())


def channel_bootstrap(*, workspace: Workspace) -> str:
    """Create or update the Cloud channel described by the WHATSAPP_* variables, when they are set.

    The environment is the operator's word, so this channel is not checked against the Graph API. Its
    app secret is WHATSAPP_APP_SECRET, stored (encrypted) on it: the webhook checks every channel's
    deliveries with that channel's own secret only."""
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


# --- channel management (REST API and admin) ------------------------------------------------
SECRET_FIELDS = ("app_secret", "access_token", "verify_token")
CHANNEL_FIELDS = frozenset(
    {
        "kind",
        "name",
        "phone_number_id",
        "display_phone_number",
        "waba_id",
        "send_rate",
        "messaging_limit",
        "is_active",
        *SECRET_FIELDS,
    }
)
# Changing any of these makes the recorded health meaningless until the channel is used again.
_HEALTH_INPUTS = frozenset({"kind", "phone_number_id", *SECRET_FIELDS})


def _channel_check(channel: Channel) -> None:
    # The token travels in an HTTP header: anything but visible ASCII could never be sent (the
    # admin form reaches here too).
    if channel.access_token and not all("!" <= c <= "~" for c in channel.access_token):
        raise ValidationFailed(
            "The access token holds characters a token cannot have.",
            details={"access_token": ["Visible ASCII characters only, no spaces."]},
        )
    if channel.kind == Channel.Kind.CLOUD and not channel.phone_number_id:
        raise ValidationFailed(
            "A Cloud API channel needs its phone_number_id.",
            details={"phone_number_id": ["Required for Cloud API."]},
        )
    if channel.kind == Channel.Kind.CLOUD and not channel.phone_number_id.isdigit():
        raise ValidationFailed(
            "Meta's phone_number_id is a number.", details={"phone_number_id": ["Digits only."]}
        )
    if not 1 <= channel.send_rate <= MAX_SEND_RATE:
        raise ValidationFailed(f"send_rate must be between 1 and {MAX_SEND_RATE}.")
    if channel.messaging_limit is not None and channel.messaging_limit < 1:
        raise ValidationFailed("messaging_limit is at least 1, or empty for unlimited.")


def channel_number_claim_verify(*, channel: Channel) -> None:
    """A channel that takes a phone_number_id (created, or its number, kind or token changed) must own it:
    a Cloud channel proves it with its access token at the Graph API, and brings its own app secret
    (deliveries are checked with it alone); no other kind may take one here (the sandbox's channels
    come from the sandbox), or it could squat a number it does not own.

    Runs before the uniqueness check, so a caller who cannot prove ownership never learns that another
    workspace has connected the number. Raises ValidationFailed, ChannelTokenInvalid, ChannelNotOwned or
    GraphUnavailable."""
    if channel.kind != Channel.Kind.CLOUD:
        if channel.phone_number_id:
            raise ValidationFailed(
                "Only a Cloud API channel has a phone_number_id.",
                details={"phone_number_id": ["Only for Cloud API."]},
            )
        return
    missing = [field for field in ("app_secret", "access_token") if not getattr(channel, field)]
    if missing:
        raise ValidationFailed(
            "A Cloud API channel needs its own app secret and access token.",
            details={field: ["Required for Cloud API."] for field in missing},
        )
    number = cloud.phone_number_verify(
        base_url=cloud.graph_url(channel),
        phone_number_id=channel.phone_number_id,
        access_token=channel.access_token,
    )
    if not channel.display_phone_number:
        channel.display_phone_number = number.display_phone_number[:32]


def _channel_save(channel: Channel, *, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            channel.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise Conflict(
            "Another channel uses this phone_number_id already.", code="duplicate_phone_number_id"
        ) from exc


def channel_create(
    *,
    workspace: Workspace,
    kind: str = Channel.Kind.CLOUD,
    name: str = "",
    phone_number_id: str = "",
    display_phone_number: str = "",
    waba_id: str = "",
    send_rate: int = DEFAULT_SEND_RATE,
    messaging_limit: int | None = None,
    is_active: bool = True,
    app_secret: str | None = "",
    access_token: str | None = "",
    verify_token: str | None = "",
    actor_id: int | None,
) -> Channel:
    """Add a number to the workspace. phone_number_id is unique across all workspaces (webhooks route by it)."""
    channel = Channel(
        workspace=workspace,
        kind=kind,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        waba_id=waba_id,
        send_rate=send_rate,
        messaging_limit=messaging_limit,
        is_active=is_active,
        app_secret=app_secret or "",
        access_token=access_token or "",
        verify_token=verify_token or "",
    )
    _channel_check(channel)
    channel_number_claim_verify(channel=channel)
    # The check above calls WhatsApp: the transaction opens only after it.
    with transaction.atomic():
        _channel_save(channel)
        _channel_audit(channel, actor_id=actor_id, action="channel.create", fields=_created_fields(channel))
    return channel


def _created_fields(channel: Channel) -> list[str]:
    return sorted(field for field in CHANNEL_FIELDS if getattr(channel, field) not in ("", None))


def _channel_audit(channel: Channel, *, actor_id: int | None, action: str, fields: list[str]) -> None:
    # Field names only: a channel's values include its access token and app secret.
    audit_record(
        workspace_id=channel.workspace_id,
        actor_id=actor_id,
        action=action,
        target=("whatsapp.channel", channel.pk),
        details={"fields": fields},
    )


def channel_connection_check(*, channel: Channel) -> cloud.PhoneNumber:
    """The number as Meta shows it to this channel's token now (`GET /{phone-number-id}`): its display
    name and quality rating. Writes nothing. Raises ValidationFailed (not a Cloud number, or not set up),
    ChannelTokenInvalid, ChannelNotOwned or GraphUnavailable."""
    if channel.kind != Channel.Kind.CLOUD:
        raise ValidationFailed(_("Only a Cloud API number is checked with Meta."), code="not_cloud")
    if not channel.phone_number_id or not channel.access_token:
        raise ValidationFailed(
            _("This number has no phone_number_id or access token yet."), code="channel_incomplete"
        )
    return cloud.phone_number_verify(
        base_url=cloud.graph_url(channel),
        phone_number_id=channel.phone_number_id,
        access_token=channel.access_token,
    )


def channel_update(*, channel: Channel, data: Mapping[str, Any], actor_id: int | None) -> Channel:
    """Change the given fields only. A secret given as None or "" is cleared; an absent one is kept."""
    unknown = set(data) - CHANNEL_FIELDS
    if unknown:
        raise ValueError(f"not channel fields: {sorted(unknown)}")
    wanted = {field: (value or "") if field in SECRET_FIELDS else value for field, value in data.items()}
    fields = [field for field, value in wanted.items() if getattr(channel, field) != value]
    for field in fields:
        setattr(channel, field, wanted[field])
    if not fields:
        return channel
    if _HEALTH_INPUTS.intersection(fields):
        channel.health, channel.health_detail = Channel.Health.UNKNOWN, ""
        channel.health_changed_at = timezone.now()
        fields += ["health", "health_detail", "health_changed_at"]
    _channel_check(channel)
    # A new number, or a new token for it, is proven again; clearing the token needs no proof.
    new_token = channel.kind == Channel.Kind.CLOUD and "access_token" in fields and channel.access_token
    if {"kind", "phone_number_id"}.intersection(fields) or new_token:
        channel_number_claim_verify(channel=channel)
        if "display_phone_number" not in fields and channel.display_phone_number:
            fields.append("display_phone_number")
    with transaction.atomic():
        _channel_save(channel, update_fields=fields)
        _channel_audit(channel, actor_id=actor_id, action="channel.update", fields=sorted(wanted))
    return channel


@transaction.atomic
def channel_delete(*, channel: Channel, actor_id: int | None) -> None:
    """Remove the number with its conversations and messages (deactivate it to keep the history)."""
    audit_record(
        workspace_id=channel.workspace_id,
        actor_id=actor_id,
        action="channel.delete",
        target=("whatsapp.channel", channel.pk),
        details={"name": channel.name},
    )
    channel.delete()


# --- the number's quality and messaging limit, as Meta reports them -----------------------------
QUALITY_FIELD = "phone_number_quality_update"
_TIER = re.compile(r"^TIER_(\d+)(K?)$")


def messaging_limit_of(tier: Any) -> int | None | bool:
    """Customers per rolling 24 h from Meta's limit (`TIER_2K`, `TIER_250`, `TIER_UNLIMITED`, or a
    number): an int, None for unlimited, False when it says nothing (`TIER_NOT_SET`, unknown)."""
    if isinstance(tier, int) and not isinstance(tier, bool) and tier > 0:
        return tier
    text = str(tier or "").strip().upper()
    if text.isdigit() and int(text) > 0:
        return int(text)
    if text == "TIER_UNLIMITED":
        return None
    found = _TIER.match(text)
    if found is None:
        return False
    return int(found.group(1)) * (1000 if found.group(2) else 1)


def channel_quality_apply(*, workspace_ids: set[int], waba_id: str, value: Mapping[str, Any]) -> int:
    """Meta's `phone_number_quality_update`: the messaging limit is the business portfolio's, shared by
    every number of the account, so each of the account's numbers takes it; the event (FLAGGED,
    UNFLAGGED, UPGRADE, DOWNGRADE, ...) is recorded on the number it names. The numbers of the
    workspaces whose app secret signed the delivery only. How many numbers changed."""
    numbers = Channel.objects.filter(workspace_id__in=workspace_ids, waba_id=waba_id)
    limit = messaging_limit_of(
        value.get("max_daily_conversations_per_business") or value.get("current_limit")
    )
    changed = 0
    if limit is not False:
        changed = numbers.exclude(messaging_limit=limit).update(messaging_limit=limit)
    display = "".join(ch for ch in str(value.get("display_phone_number") or "") if ch.isdigit())
    event = str(value.get("event") or "")[:32]
    if display and event:
        for channel in numbers:
            if "".join(ch for ch in channel.display_phone_number if ch.isdigit()) == display:
                Channel.objects.filter(pk=channel.pk).update(
                    quality_event=event, quality_changed_at=timezone.now()
                )
                changed += 1
    logger.info(
        "quality update for account %s: event %s, limit %s, %d numbers", waba_id, event, limit, changed
    )
    return changed
