"""Writes for WhatsApp Web sessions: their state as the browser reports it, and the messages it sees."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.alerts.models import WHATSAPP_WEB_SESSION_LOST
from apps.alerts.services import alert_system_raise
from apps.conversations.services.ingest import inbound_store
from apps.live.services import live_publish
from apps.whatsapp.models import Channel
from apps.whatsapp.services import channel_health_set, channel_webhook_seen
from apps.whatsapp_web.inbound import inbound_messages
from apps.whatsapp_web.models import WebSession

logger = logging.getLogger(__name__)

S = WebSession.State
HEALTHY = frozenset({S.CONNECTED, S.SYNCING})
# States that need a person (scan a QR, close the other session, update): the session is unhealthy.
UNHEALTHY = frozenset({S.LOGGED_OUT, S.CONFLICT, S.BLOCKED, S.OUTDATED, S.DISCONNECTED})
# States that only a person can end: entering one raises an alert.
ALERTING = {
    S.LOGGED_OUT: "WhatsApp Web number %(name)s was logged out on the phone: scan its new QR code to link it again.",
    S.BLOCKED: "WhatsApp blocked the WhatsApp Web number %(name)s.",
    S.OUTDATED: "WhatsApp Web changed for number %(name)s: update the platform's WhatsApp Web bridge.",
}


@transaction.atomic
def web_session_state_set(
    *, channel: Channel, state: str, detail: str = "", qr: str = "", whatsapp_version: str = ""
) -> bool:
    """Record what the browser reports; True when the state (or the QR shown) changed, which is then
    pushed to the workspace's screens. The channel's health follows the session's."""
    if state not in S.values:
        raise ValueError(f"unknown WhatsApp Web state {state!r}")
    now = timezone.now()
    session, _ = WebSession.objects.select_for_update().get_or_create(channel=channel)
    qr = qr if state == S.QR else ""
    changed = session.state != state or session.qr != qr or session.detail != detail[:255]
    session.heartbeat_at = now
    fields = ["heartbeat_at"]
    if whatsapp_version and session.whatsapp_version != whatsapp_version[:32]:
        session.whatsapp_version = whatsapp_version[:32]
        fields.append("whatsapp_version")
    entered = changed and session.state != state
    if changed:
        if entered:
            session.state_changed_at = now
            fields.append("state_changed_at")
            logger.info("WhatsApp Web channel %s: %s -> %s %s", channel.pk, session.state, state, detail)
        session.state, session.qr, session.detail = state, qr, detail[:255]
        fields += ["state", "qr", "detail"]
    session.save(update_fields=fields)
    if changed:
        if state in HEALTHY:
            channel_health_set(channel=channel, healthy=True)
        elif state in UNHEALTHY:
            channel_health_set(
                channel=channel, healthy=False, detail=f"WhatsApp Web: {state} {detail}".strip()
            )
        live_publish(
            workspace_id=channel.workspace_id,
            kind="web_session",
            payload={"channel_id": channel.pk, "state": state},
        )
    if entered and state in ALERTING:
        alert_system_raise(
            workspace_id=channel.workspace_id,
            kind=WHATSAPP_WEB_SESSION_LOST,
            summary=ALERTING[S(state)] % {"name": channel.name or channel.pk},
            channel_id=channel.pk,
        )
    return changed


def web_session_heartbeat(*, channel: Channel) -> None:
    WebSession.objects.filter(channel=channel).update(heartbeat_at=timezone.now())


def web_session_reconnected(*, channel: Channel) -> None:
    from django.db.models import F

    WebSession.objects.filter(channel=channel).update(reconnects=F("reconnects") + 1)


def web_messages_store(*, channel: Channel, events: list[dict[str, Any]]) -> list[int]:
    """The customers' messages the browser saw, through the webhook's own ingest: stored once each by
    WhatsApp's message id (a message seen twice, after a reload or a reconnect, is a no-op) and
    processed after commit. The ids of the new rows."""
    messages = inbound_messages(events)
    if not messages:
        return []
    with transaction.atomic():
        created = inbound_store(channel=channel, messages=messages)
        channel_webhook_seen(channel_ids=[channel.pk])
    return created
