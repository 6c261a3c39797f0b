"""Reads for the channels' operational status: health, queue depth, recent send outcomes, and the
customer messages not processed yet or set aside."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.conversations.models import INBOUND_SET_ASIDE, Message
from apps.whatsapp.cloud import graph_breaker
from apps.whatsapp.models import Channel

STATUS_WINDOW = timedelta(hours=24)
S = Message.SendState
QUEUED_STATES = (S.PENDING, S.RETRY, S.PROCESSING)


@dataclass(frozen=True)
class WebSessionStatus:
    """A WhatsApp Web channel's session as worker-web last reported it (apps/whatsapp_web)."""

    state: str
    detail: str
    state_changed_at: datetime | None
    heartbeat_at: datetime | None
    stale: bool  # no heartbeat for WHATSAPP_WEB_STALE_SECONDS: worker-web is down or stuck
    whatsapp_version: str
    reconnects: int


@dataclass(frozen=True)
class ChannelStatus:
    id: int
    name: str
    display_phone_number: str
    kind: str
    is_active: bool
    health: str
    health_detail: str
    last_webhook_at: datetime | None
    queue_depth: int
    sent_24h: int
    failed_24h: int
    error_rate: float
    inbound_backlog: int
    inbound_set_aside_24h: int
    graph_circuit: str  # the Graph API breaker this channel's calls go through
    web_session: WebSessionStatus | None = None  # channels of kind `web` only


def channels_status(*, channels: QuerySet[Channel], now: datetime | None = None) -> list[ChannelStatus]:
    """One row per channel, in three queries.

    `queue_depth` counts outbound rows waiting or in flight (pending, retry, processing), whatever
    their age. Of the outbound rows created in the last 24 hours, `failed_24h` counts those that
    failed for good (the queue gave up, or WhatsApp reported a failed delivery) and `sent_24h`
    those WhatsApp accepted and did not fail later. `error_rate` = failed / (sent + failed), 0 when none.
    `inbound_backlog` counts customer messages stored but not processed yet, `inbound_set_aside_24h`
    those of the last 24 hours set aside after failing (see the runbook).
    """
    since = (now or timezone.now()) - STATUS_WINDOW
    now = now or timezone.now()
    rows = list(
        channels.defer("app_secret", "access_token", "verify_token")
        .select_related("web_session")
        .order_by("pk")
    )
    failed = Q(send_state=S.FAILED) | Q(status=Message.Status.FAILED)
    recent = Q(created_at__gte=since)
    counts: dict[int, Mapping[str, Any]] = {
        row["channel_id"]: row
        for row in Message.objects.filter(
            channel__in=[c.pk for c in rows], direction=Message.Direction.OUTBOUND
        )
        .values("channel_id")
        .annotate(
            queue_depth=Count("pk", filter=Q(send_state__in=QUEUED_STATES)),
            sent=Count("pk", filter=recent & Q(send_state=S.SENT) & ~Q(status=Message.Status.FAILED)),
            failed=Count("pk", filter=recent & failed),
        )
        .order_by()
    }
    inbound: dict[int, Mapping[str, Any]] = {
        row["channel_id"]: row
        for row in Message.objects.filter(
            channel__in=[c.pk for c in rows], direction=Message.Direction.INBOUND
        )
        .filter(Q(processed_at__isnull=True) | (recent & Q(failure_reason=INBOUND_SET_ASIDE)))
        .values("channel_id")
        .annotate(
            backlog=Count("pk", filter=Q(processed_at__isnull=True)),
            set_aside=Count("pk", filter=Q(failure_reason=INBOUND_SET_ASIDE)),
        )
        .order_by()
    }
    result = []
    for channel in rows:
        found = counts.get(channel.pk, {})
        arrived = inbound.get(channel.pk, {})
        sent, failures = found.get("sent", 0), found.get("failed", 0)
        result.append(
            ChannelStatus(
                id=channel.pk,
                name=channel.name,
                display_phone_number=channel.display_phone_number,
                kind=channel.kind,
                is_active=channel.is_active,
                health=channel.health,
                health_detail=channel.health_detail,
                last_webhook_at=channel.last_webhook_at,
                queue_depth=found.get("queue_depth", 0),
                sent_24h=sent,
                failed_24h=failures,
                error_rate=failures / (sent + failures) if sent + failures else 0.0,
                inbound_backlog=arrived.get("backlog", 0),
                inbound_set_aside_24h=arrived.get("set_aside", 0),
                graph_circuit=graph_breaker(channel).state(),
                web_session=_web_session(channel, now),
            )
        )
    return result


def _web_session(channel: Channel, now: datetime) -> WebSessionStatus | None:
    if channel.kind != Channel.Kind.WEB:
        return None
    try:
        session = channel.web_session
    except ObjectDoesNotExist:  # worker-web has not opened it yet
        return WebSessionStatus("starting", "", None, None, True, "", 0)
    stale_after = timedelta(seconds=settings.WHATSAPP_WEB_STALE_SECONDS)
    return WebSessionStatus(
        state=session.state,
        detail=session.detail,
        state_changed_at=session.state_changed_at,
        heartbeat_at=session.heartbeat_at,
        stale=session.heartbeat_at is None or now - session.heartbeat_at > stale_after,
        whatsapp_version=session.whatsapp_version,
        reconnects=session.reconnects,
    )
