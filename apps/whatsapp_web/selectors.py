"""Reads for WhatsApp Web sessions."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.models import Workspace
from apps.conversations.models import Message
from apps.whatsapp.models import Channel
from apps.whatsapp_web.models import WebSession


def customer_wrote(*, channel_id: int, to: str) -> bool:
    """Has this customer ever written to the channel? WhatsApp Web answers, it never starts a chat."""
    return Message.objects.filter(
        Q(from_wa_id=to) | Q(from_bsuid=to), channel_id=channel_id, direction=Message.Direction.INBOUND
    ).exists()


def web_stored_wamids(*, channel: Channel, wamids: list[str]) -> set[str]:
    """Which of these WhatsApp message ids the channel has stored already."""
    return set(Message.objects.filter(channel=channel, wamid__in=wamids).values_list("wamid", flat=True))


def web_channels_to_run() -> QuerySet[Channel]:
    """The channels worker-web keeps a browser for: active channels of kind `web`, in every workspace
    (worker-web serves the installation, like the webhook)."""
    return Channel.objects.filter(kind=Channel.Kind.WEB, is_active=True).order_by("pk")


def web_channel_get(*, workspace: Workspace, pk: int) -> Channel | None:
    """One of the workspace's WhatsApp Web channels (None for another workspace's, or another kind)."""
    return Channel.objects.filter(workspace=workspace, kind=Channel.Kind.WEB, pk=pk).first()


def web_session_of(*, channel: Channel) -> WebSession | None:
    return WebSession.objects.filter(channel=channel).first()


def web_sessions_by_channel(*, channel_ids: list[int]) -> dict[int, WebSession]:
    return {session.channel_id: session for session in WebSession.objects.filter(channel_id__in=channel_ids)}


def web_channels_with_sessions(*, workspace: Workspace) -> list[tuple[Channel, WebSession | None]]:
    """The workspace's WhatsApp Web channels, each with its session (None before worker-web opens it)."""
    channels = list(
        Channel.objects.filter(workspace=workspace, kind=Channel.Kind.WEB)
        .defer("app_secret", "access_token", "verify_token")
        .order_by("pk")
    )
    sessions = web_sessions_by_channel(channel_ids=[channel.pk for channel in channels])
    return [(channel, sessions.get(channel.pk)) for channel in channels]


def qr_svg_data_uri(code: str) -> str:
    """The QR code WhatsApp Web shows, as an SVG data URI for an <img> (drawn here: the page never
    loads anything from elsewhere)."""
    import segno  # noqa: PLC0415 - only the dashboard's WhatsApp Web page draws one

    return str(segno.make(code, error="l").svg_data_uri(scale=5, border=4))
