"""Reads for WhatsApp Web sessions."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.conversations.models import Message
from apps.whatsapp.models import Channel
from apps.whatsapp_web.models import WebSession


def customer_wrote(*, channel_id: int, to: str) -> bool:
    """Has this customer ever written to the channel? WhatsApp Web answers, it never starts a chat."""
    return Message.objects.filter(
        Q(from_wa_id=to) | Q(from_bsuid=to), channel_id=channel_id, direction=Message.Direction.INBOUND
    ).exists()


def web_channels_to_run() -> QuerySet[Channel]:
    """The channels worker-web keeps a browser for: active channels of kind `web`, in every workspace
    (worker-web serves the installation, like the webhook)."""
    return Channel.objects.filter(kind=Channel.Kind.WEB, is_active=True).order_by("pk")


def web_session_of(*, channel: Channel) -> WebSession | None:
    return WebSession.objects.filter(channel=channel).first()


def web_sessions_by_channel(*, channel_ids: list[int]) -> dict[int, WebSession]:
    return {session.channel_id: session for session in WebSession.objects.filter(channel_id__in=channel_ids)}
