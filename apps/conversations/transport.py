"""What the conversations domain needs from a WhatsApp transport, and how one is chosen.

`conversations` never imports `whatsapp`: the transport class for each channel kind is named by
the setting WHATSAPP_TRANSPORTS (a dotted path per kind), so the Cloud API, WhatsApp Web and the
sandbox plug in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from chatbot.exceptions import DomainError


@dataclass(frozen=True)
class OutboundRequest:
    """One message to send, in Meta's vocabulary.

    `type` is a Cloud API message type (text, template, interactive, image, audio, video,
    document, sticker, location, reaction) and `content` the object Meta expects under that
    key, e.g. {"body": "hola"} for text or {"name": ..., "language": {"code": "es"}} for a template.
    `message_uid` travels as biz_opaque_callback_data, so status webhooks can be matched to the
    row even when the send's answer was lost.
    """

    message_uid: str
    to: str
    type: str
    content: dict[str, Any]
    reply_to_wamid: str = ""


@dataclass(frozen=True)
class SendResult:
    wamids: list[str]  # more than one when a long text had to be split


@dataclass(frozen=True)
class MediaFile:
    content: bytes
    mime_type: str
    sha256: str = ""
    filename: str = ""


class SendError(DomainError):
    """A send that did not go through. `reason` is ours; `meta_code` is Meta's error code."""

    code = "send_failed"
    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        permanent: bool,
        meta_code: int | None = None,
        retry_after: int | None = None,
        channel_unhealthy: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, code=reason, retry_after=retry_after)
        self.reason = reason
        self.permanent = permanent
        self.meta_code = meta_code
        self.channel_unhealthy = channel_unhealthy
        # True when the request may have reached Meta (timeout after sending, connection cut
        # mid-answer): the message must be reconciled, never blindly sent again.
        self.outcome_unknown = outcome_unknown


# Reasons a transport may give (SendError.reason).
REASON_RATE_LIMITED = "rate_limited"  # 130429: the number's throughput
REASON_RECIPIENT_RATE_LIMITED = "recipient_rate_limited"  # 131056
REASON_WINDOW_CLOSED = "window_closed"  # 131047
REASON_SPAM_LIMITED = "spam_limited"  # 131048
REASON_MARKETING_CAP = "marketing_cap"  # 131049
REASON_OPTED_OUT = "opted_out"  # 131050
REASON_UNDELIVERABLE = "undeliverable"  # 131026
REASON_TEMPLATE_INVALID = "template_invalid"  # 132000, 132001, other 132xxx
REASON_MESSAGING_LIMIT = "messaging_limit"  # 131064
REASON_AUTH = "auth"  # 190, HTTP 401
REASON_ACCOUNT_RESTRICTED = "account_restricted"  # 368, 131031
REASON_SERVER_ERROR = "server_error"  # HTTP 5xx
REASON_TIMEOUT = "timeout"
REASON_NETWORK = "network"
REASON_INVALID_REQUEST = "invalid_request"  # other 4xx
REASON_CIRCUIT_OPEN = "circuit_open"  # not called: the API kept failing and calls are paused


class ChannelRef(Protocol):
    """What conversations reads of a channel: whatsapp's Channel, or the webhook's cached route."""

    @property
    def pk(self) -> int: ...

    @property
    def workspace_id(self) -> int: ...


class TransportChannel(ChannelRef, Protocol):
    """A channel a transport serves; the transport reads its own fields (tokens, ids) itself."""

    @property
    def kind(self) -> str: ...


class Transport(Protocol):
    def send(self, channel: TransportChannel, request: OutboundRequest) -> SendResult: ...

    def mark_read(self, channel: TransportChannel, wamid: str) -> None: ...

    def fetch_media(self, channel: TransportChannel, media_id: str) -> MediaFile: ...

    def upload_media(
        self, channel: TransportChannel, *, content: bytes, mime_type: str, filename: str
    ) -> str:
        """Store a file with WhatsApp for a later send; its media id."""
        ...


@dataclass
class _Registry:
    cache: dict[str, Transport] = field(default_factory=dict)


_registry = _Registry()


def transport_for(channel: TransportChannel) -> Transport:
    path = settings.WHATSAPP_TRANSPORTS[channel.kind]
    if path not in _registry.cache:
        _registry.cache[path] = import_string(path)()
    return _registry.cache[path]
