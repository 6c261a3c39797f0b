"""Writes for WhatsApp Web sessions: their state as the browser reports it, and the messages it sees."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.alerts.models import WHATSAPP_WEB_SESSION_LOST
from apps.alerts.services import alert_system_raise
from apps.conversations.services.ingest import inbound_store, statuses_apply
from apps.live.services import live_publish
from apps.whatsapp.models import Channel
from apps.whatsapp.services import channel_health_set, channel_webhook_seen
from apps.whatsapp_web import commands
from apps.whatsapp_web.inbound import inbound_messages, status_updates
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.selectors import web_channels_to_run
from chatbot.exceptions import Conflict, ValidationFailed

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
    if state != S.QR and session.pairing_code:  # linked, or lost: the code is spent
        session.pairing_code = ""
        fields.append("pairing_code")
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


def web_statuses_store(*, channel: Channel, events: list[dict[str, Any]], uids: dict[str, str]) -> int:
    """The receipts of our sends the browser saw (sent, delivered, read, failed), applied like the Cloud
    status webhook's: forward only, a lost send answer reconciled. How many messages changed."""
    updates = status_updates(events, uids)
    if not updates:
        return 0
    with transaction.atomic():
        return statuses_apply(channel=channel, updates=updates)


PAIRING_TTL = 60.0  # seconds a pairing request waits for worker-web to take it


def web_pairing_request(*, channel: Channel, phone: str) -> str:
    """Ask WhatsApp Web for a code to link the channel by phone number instead of the QR code (the
    phone's Linked devices > Link with phone number). worker-web asks the page and the code appears
    live on the dashboard (web_session_pairing_set). The phone number in digits, as asked."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not 8 <= len(digits) <= 15 or any(ch not in "+0123456789 -()." for ch in phone):
        raise ValidationFailed(
            _("Give the number's phone number with its country code, e.g. +34 600 123 456."), code="phone"
        )
    session = WebSession.objects.filter(channel=channel).first()
    if session is None or session.state != S.QR:
        raise Conflict(_("This number is not waiting to be linked."), code="not_linking")
    try:
        commands.command_post(channel_id=channel.pk, op="pair", args={"phone": digits}, ttl=PAIRING_TTL)
    except commands.NoCommandChannel as exc:
        raise Conflict(
            _("WhatsApp Web needs Redis (REDIS_URL): its browser runs in worker-web."), code="no_worker_web"
        ) from exc
    WebSession.objects.filter(pk=session.pk).update(pairing_code="", detail="pairing code requested")
    live_publish(
        workspace_id=channel.workspace_id,
        kind="web_session",
        payload={"channel_id": channel.pk, "state": S.QR},
    )
    return digits


def web_session_pairing_set(*, channel: Channel, code: str = "", error: str = "") -> None:
    """What the page answered to a pairing request: the code (shown as XXXX-XXXX), or why not."""
    clean = "".join(ch for ch in code if ch.isalnum()).upper()[:16]
    shown = f"{clean[:4]}-{clean[4:]}" if len(clean) == 8 else clean
    detail = f"pairing code failed: {error}"[:255] if error or not clean else ""
    updated = WebSession.objects.filter(channel=channel, state=S.QR).update(pairing_code=shown, detail=detail)
    if updated:
        live_publish(
            workspace_id=channel.workspace_id,
            kind="web_session",
            payload={"channel_id": channel.pk, "state": S.QR},
        )


# --- which worker-web process drives which channel ---------------------------------------------------
# A lease per channel on its session row: `owner` (a process) and `lease_until`, both compared with the
# database's clock (Now()), so processes on machines whose clocks differ still agree on who holds what.
def _db_now_plus(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def web_leases_hold(*, owner: str, has_profile: Callable[[int], bool]) -> list[Channel]:
    """Renew `owner`'s leases, give back those of channels no longer to run, and take the channels that
    are free (never held, released, or whose owner stopped renewing), up to
    WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER; the channels `owner` now holds, which it alone may open.

    A process without a channel's browser profile on its disk (`has_profile`) waits
    WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS longer before taking it: the process that has the profile
    reopens the linked session, another would have to show a new QR code."""
    lease = settings.WHATSAPP_WEB_LEASE_SECONDS
    channels = {channel.pk: channel for channel in web_channels_to_run()}
    existing = set(WebSession.objects.filter(channel_id__in=channels).values_list("channel_id", flat=True))
    WebSession.objects.bulk_create(
        [WebSession(channel_id=pk) for pk in channels if pk not in existing], ignore_conflicts=True
    )
    mine = WebSession.objects.filter(owner=owner)
    mine.exclude(channel_id__in=channels).update(owner="", lease_until=Now())
    # Renewed before it is read: a lease that has not run out cannot be taken in between.
    mine.filter(channel_id__in=channels).update(lease_until=_db_now_plus(lease))
    held = set(mine.filter(channel_id__in=channels).values_list("channel_id", flat=True))
    cap = settings.WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER
    for pk in sorted(set(channels) - held):
        if cap and len(held) >= cap:
            break
        wait = 0.0 if has_profile(pk) else settings.WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS
        free = Q(lease_until__isnull=True) | Q(lease_until__lte=_db_now_plus(-wait))
        # One conditional UPDATE: of two processes trying at once, one changes the row.
        if WebSession.objects.filter(free, channel_id=pk).update(
            owner=owner, lease_until=_db_now_plus(lease)
        ):
            logger.info("WhatsApp Web channel %s: now driven by %s", pk, owner)
            held.add(pk)
    return [channels[pk] for pk in sorted(held)]


def web_leases_release(*, owner: str) -> int:
    """Give back every channel `owner` holds (a clean stop): another process may take them at once
    (or after the profile preference, when it lacks their profiles). How many."""
    return WebSession.objects.filter(owner=owner).update(owner="", lease_until=Now())


def web_session_stopped(*, channel: Channel, owner: str) -> None:
    """The page of a channel `owner` no longer drives was closed: recorded as stopped, unless another
    process holds the channel now (its state is that process's to report)."""
    if not WebSession.objects.filter(channel=channel).exclude(owner="").exclude(owner=owner).exists():
        web_session_state_set(channel=channel, state=S.STOPPED)
