"""Meta's WhatsApp Cloud API (the Graph API): sends, read receipts, media downloads and the check that
a channel's access token reads its phone number (ownership).

The only module that talks to Meta. One shared HTTP client with explicit timeouts; every failure
becomes a SendError whose `reason`, `permanent`, `channel_unhealthy` and `outcome_unknown` tell the
caller what to do (the table of Meta's codes is `_RULES`). The access token goes in the
Authorization header only: it is never logged or put in an error message.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from apps.conversations.text import split_text
from apps.conversations.transport import (
    REASON_ACCOUNT_RESTRICTED,
    REASON_AUTH,
    REASON_CIRCUIT_OPEN,
    REASON_INVALID_REQUEST,
    REASON_MARKETING_CAP,
    REASON_MESSAGING_LIMIT,
    REASON_NETWORK,
    REASON_OPTED_OUT,
    REASON_RATE_LIMITED,
    REASON_RECIPIENT_RATE_LIMITED,
    REASON_SERVER_ERROR,
    REASON_SPAM_LIMITED,
    REASON_TEMPLATE_INVALID,
    REASON_TIMEOUT,
    REASON_UNDELIVERABLE,
    REASON_WINDOW_CLOSED,
    MediaFile,
    OutboundRequest,
    SendError,
    SendResult,
)
from apps.whatsapp import services  # a module, not names: services calls phone_number_verify in turn
from apps.whatsapp.models import Channel
from chatbot.circuit import Breaker, breaker
from chatbot.exceptions import TransientError, ValidationFailed

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
# The ownership check runs while an admin waits for the API's answer.
VERIFY_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_MEDIA_BYTES = 100 * 1024 * 1024
SEND_TYPES = frozenset(
    {
        "text",
        "template",
        "interactive",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "reaction",
    }
)
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

# Meta's limits (Cloud API reference), checked before calling so a bad request fails at once.
INTERACTIVE_BODY_MAX = 1024
INTERACTIVE_HEADER_MAX = 60
INTERACTIVE_FOOTER_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
SECTIONS_MAX = 10
ROWS_MAX = 10  # across all sections
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200


@dataclass(frozen=True)
class _Rule:
    reason: str
    permanent: bool
    channel_unhealthy: bool = False


_RATE_LIMITED = _Rule(REASON_RATE_LIMITED, permanent=False)
_AUTH = _Rule(REASON_AUTH, permanent=True, channel_unhealthy=True)
_RESTRICTED = _Rule(REASON_ACCOUNT_RESTRICTED, permanent=True, channel_unhealthy=True)
_SERVER = _Rule(REASON_SERVER_ERROR, permanent=False)
_TEMPLATE = _Rule(REASON_TEMPLATE_INVALID, permanent=True)
_INVALID = _Rule(REASON_INVALID_REQUEST, permanent=True)

# Meta's error codes (WHATSAPP.md; the codes match pywa 4.5's errors module).
_RULES: dict[int, _Rule] = {
    130429: _RATE_LIMITED,
    4: _RATE_LIMITED,  # the app's Graph API call limit
    80007: _RATE_LIMITED,  # the WhatsApp Business Account's call limit
    131056: _Rule(REASON_RECIPIENT_RATE_LIMITED, permanent=False),
    131047: _Rule(REASON_WINDOW_CLOSED, permanent=True),
    131048: _Rule(REASON_SPAM_LIMITED, permanent=False),
    131049: _Rule(REASON_MARKETING_CAP, permanent=True),
    # The customer is in Meta's marketing experiment hold-out: like 131049, never retried.
    130472: _Rule(REASON_MARKETING_CAP, permanent=True),
    131050: _Rule(REASON_OPTED_OUT, permanent=True),
    131026: _Rule(REASON_UNDELIVERABLE, permanent=True),
    131064: _Rule(REASON_MESSAGING_LIMIT, permanent=True),
    0: _AUTH,  # AuthException
    10: _AUTH,  # the token lacks the permission
    190: _AUTH,
    368: _RESTRICTED,
    131031: _RESTRICTED,
    1: _SERVER,  # "An unknown error occurred"
    2: _SERVER,  # "Service temporarily unavailable"
    131000: _SERVER,  # "Something went wrong"
    131016: _SERVER,  # "Service unavailable"
    131057: _SERVER,  # the account is in maintenance mode
}


def error_rule(http_status: int, meta_code: int | None) -> _Rule:
    """How a Graph API error is handled: Meta's code first, then the HTTP status."""
    if meta_code is not None:
        if meta_code in _RULES:
            return _RULES[meta_code]
        if 132000 <= meta_code <= 132999:
            return _TEMPLATE
        if 200 <= meta_code <= 299:  # Graph API permission errors
            return _AUTH
    if http_status == 401:
        return _AUTH
    if http_status == 429:
        return _RATE_LIMITED
    if http_status >= 500:
        return _SERVER
    return _INVALID


@functools.cache
def http_client() -> httpx.Client:
    """The process's one client for Meta (connection pool shared by every channel)."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.WHATSAPP_SEND_TIMEOUT, connect=CONNECT_TIMEOUT),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        follow_redirects=False,
    )


# A pool inherited through fork() would share sockets with the parent (Celery's prefork workers).
os.register_at_fork(after_in_child=http_client.cache_clear)


def _timeout() -> httpx.Timeout:
    # Read per call, so a change of the setting (and tests) applies without a new client.
    return httpx.Timeout(settings.WHATSAPP_SEND_TIMEOUT, connect=CONNECT_TIMEOUT)


# Failures that say the Graph API itself is in trouble (not this message, number or token).
_OUTAGE_REASONS = frozenset({REASON_SERVER_ERROR, REASON_TIMEOUT, REASON_NETWORK})


def graph_breaker(channel: Channel) -> Breaker:
    """One breaker per Graph host: when Meta's API is down it is down for every number."""
    return graph_host_breaker(graph_url(channel))


def graph_breaker_name(base_url: str) -> str:
    return f"whatsapp:{urlsplit(base_url).netloc or 'graph'}"


def graph_host_breaker(base_url: str) -> Breaker:
    return breaker(
        graph_breaker_name(base_url),
        failures=settings.WHATSAPP_BREAKER_FAILURES,
        cooldown=settings.WHATSAPP_BREAKER_COOLDOWN,
    )


# --- ownership ---------------------------------------------------------------------------------------
class ChannelTokenInvalid(ValidationFailed):
    code = "channel_token_invalid"


class ChannelNotOwned(ValidationFailed):
    code = "channel_not_owned"


class GraphUnavailable(TransientError):
    code = "graph_unavailable"


@dataclass(frozen=True)
class PhoneNumber:
    id: str
    display_phone_number: str
    verified_name: str
    quality_rating: str = ""  # GREEN, YELLOW, RED or UNKNOWN, as Meta rates the number now


def phone_number_verify(*, base_url: str, phone_number_id: str, access_token: str) -> PhoneNumber:
    """The number as Meta shows it to `access_token` (`GET /{phone-number-id}`): only a token of the
    business that owns the number reads it, so an answer proves ownership.

    Raises ChannelTokenInvalid (Meta rejects the token), ChannelNotOwned (the token does not read this
    number) or GraphUnavailable. Meta's body is logged as a code only and never passed on.
    """
    url = f"{base_url}/{settings.WHATSAPP_GRAPH_VERSION}/{quote(phone_number_id, safe='')}"
    try:
        response = http_client().get(
            url,
            params={"fields": "id,display_phone_number,verified_name,quality_rating"},
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=VERIFY_TIMEOUT,
        )
    except httpx.TransportError as exc:
        logger.warning(
            "phone number check for %s: Graph API not reached (%s)", phone_number_id, type(exc).__name__
        )
        raise GraphUnavailable(
            _("WhatsApp's API could not be reached to check the number; try again.")
        ) from None
    data = _json_or_none(response)
    if response.is_success and isinstance(data, dict) and str(data.get("id", "")) == phone_number_id:
        return PhoneNumber(
            id=phone_number_id,
            display_phone_number=str(data.get("display_phone_number") or ""),
            verified_name=str(data.get("verified_name") or ""),
            quality_rating=str(data.get("quality_rating") or ""),
        )
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), int) else None
    logger.warning(
        "phone number check for %s refused: HTTP %s, code %s", phone_number_id, response.status_code, code
    )
    if code in (0, 190) or (code is None and response.status_code == 401):
        raise ChannelTokenInvalid(_("WhatsApp does not accept this access token."))
    if error_rule(response.status_code, code).reason in (REASON_SERVER_ERROR, REASON_RATE_LIMITED):
        raise GraphUnavailable(_("WhatsApp's API could not check the number just now; try again."))
    raise ChannelNotOwned(_("This access token does not give access to this phone_number_id."))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class CloudTransport:
    """The Transport for channels on Meta's Cloud API (and the sandbox, which speaks it to the stand-in)."""

    def send(self, channel: Channel, request: OutboundRequest) -> SendResult:
        """Send `request`; a text over 4,096 characters goes as several messages, in order.

        When a later part of a split text fails, the parts already sent are in the error's
        `details["sent_wamids"]` and the error is `outcome_unknown`: resending would repeat them.
        """
        problem = request_problem(request)
        if problem:
            logger.warning("whatsapp send refused before calling Meta (channel %s): %s", channel.pk, problem)
            raise SendError(problem, reason=REASON_INVALID_REQUEST, permanent=True)
        bodies = _message_bodies(request)
        wamids: list[str] = []
        for body in bodies:
            try:
                response = self._call(channel, "POST", _messages_url(channel), body=body)
                wamids.append(_wamid(response))
            except SendError as exc:
                if not wamids:
                    raise
                raise _partial(exc, wamids, len(bodies)) from None
        if channel.health != Channel.Health.OK:
            services.channel_health_set(channel=channel, healthy=True)
        return SendResult(wamids=wamids)

    def mark_read(self, channel: Channel, wamid: str) -> None:
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        self._call(channel, "POST", _messages_url(channel), body=body)

    def fetch_media(self, channel: Channel, media_id: str) -> MediaFile:
        """Download a customer's media: its metadata (a short-lived URL), then the bytes."""
        url = f"{graph_url(channel)}/{settings.WHATSAPP_GRAPH_VERSION}/{media_id}"
        metadata = _json(self._call(channel, "GET", url))
        download_url, declared = metadata.get("url"), metadata.get("file_size")
        if not isinstance(download_url, str) or not download_url:
            raise SendError(
                f"Meta gave no download URL for media {media_id}.",
                reason=REASON_SERVER_ERROR,
                permanent=False,
            )
        if isinstance(declared, int) and declared > MAX_MEDIA_BYTES:
            raise _too_large(media_id)
        content, content_type = self._download(channel, download_url, media_id)
        mime_type = metadata.get("mime_type")
        return MediaFile(
            content=content,
            mime_type=mime_type if isinstance(mime_type, str) and mime_type else content_type,
            sha256=str(metadata.get("sha256") or ""),
        )

    def upload_media(self, channel: Channel, *, content: bytes, mime_type: str, filename: str) -> str:
        """Upload a file to the number's media store (Meta keeps it 30 days); its media id, which a
        send then names instead of a link."""
        url = _messages_url(channel).removesuffix("/messages") + "/media"
        response = self._call(
            channel,
            "POST",
            url,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        media_id = _json(response).get("id")
        if not isinstance(media_id, str) or not media_id:
            raise SendError(
                "Meta gave no id for the uploaded file.", reason=REASON_SERVER_ERROR, permanent=False
            )
        return media_id

    # --- HTTP ------------------------------------------------------------------------------------
    def _call(
        self,
        channel: Channel,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        token = self._token(channel)
        circuit = _allowed(channel)
        try:
            response = http_client().request(
                method,
                url,
                json=body,
                data=data,
                files=files,
                headers={"Authorization": f"Bearer {token}"},
                timeout=_timeout(),
            )
        except httpx.TransportError as exc:
            raise self._failed(channel, _transport_error(exc), token, circuit) from None
        if not response.is_success:
            raise self._failed(channel, _response_error(response), token, circuit)
        circuit.success()
        return response

    def _download(self, channel: Channel, url: str, media_id: str) -> tuple[bytes, str]:
        token = self._token(channel)
        headers = {"Authorization": f"Bearer {token}"}
        circuit = _allowed(channel)
        try:
            with http_client().stream("GET", url, headers=headers, timeout=_timeout()) as response:
                if not response.is_success:
                    response.read()
                    raise self._failed(channel, _response_error(response), token, circuit)
                circuit.success()
                if int(response.headers.get("Content-Length") or 0) > MAX_MEDIA_BYTES:
                    raise _too_large(media_id)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_MEDIA_BYTES:  # the metadata's size is Meta's word, not a guarantee
                        raise _too_large(media_id)
                    chunks.append(chunk)
                content_type = response.headers.get("Content-Type", "application/octet-stream")
                return b"".join(chunks), content_type.split(";")[0].strip()
        except httpx.TransportError as exc:
            raise self._failed(channel, _transport_error(exc), token, circuit) from None

    def _token(self, channel: Channel) -> str:
        token = channel.access_token or ""
        if not token:
            error = SendError(
                "The channel has no access token.", reason=REASON_AUTH, permanent=True, channel_unhealthy=True
            )
            raise self._failed(channel, error, token)
        return token

    def _failed(
        self, channel: Channel, error: SendError, token: str, circuit: Breaker | None = None
    ) -> SendError:
        """Log `error` (token-free), tell the breaker and record an unhealthy channel; the caller raises it."""
        if circuit is not None:
            # Only outages count; a refused message (4xx, 130429) proves the API is answering.
            if error.reason in _OUTAGE_REASONS:
                circuit.failure()
            else:
                circuit.success()
        if token and token in error.message:
            error = _redacted(error, token)
        logger.warning(
            "whatsapp call failed (channel %s): reason=%s meta_code=%s permanent=%s outcome_unknown=%s: %s",
            channel.pk,
            error.reason,
            error.meta_code,
            error.permanent,
            error.outcome_unknown,
            error.message,
        )
        if error.channel_unhealthy:
            services.channel_health_set(channel=channel, healthy=False, detail=error.message)
        return error


def _allowed(channel: Channel) -> Breaker:
    """The channel's Graph breaker, when it lets a call through; otherwise a retryable error at once."""
    circuit = graph_breaker(channel)
    if not circuit.allow():
        logger.warning("whatsapp call not made (channel %s): circuit %s is open", channel.pk, circuit.name)
        raise SendError(
            "WhatsApp's API kept failing; calls are paused for a moment and this one will be retried.",
            reason=REASON_CIRCUIT_OPEN,
            permanent=False,
            retry_after=math.ceil(circuit.cooldown),
        )
    return circuit


def _messages_url(channel: Channel) -> str:
    if not channel.phone_number_id:
        raise SendError("The channel has no phone_number_id.", reason=REASON_INVALID_REQUEST, permanent=True)
    return f"{graph_url(channel)}/{settings.WHATSAPP_GRAPH_VERSION}/{channel.phone_number_id}/messages"


def graph_url(channel: Channel) -> str:
    """Where this channel's Graph API lives: sandbox channels talk to the local stand-in, never to Meta."""
    if channel.kind == Channel.Kind.SANDBOX:
        return str(settings.WHATSAPP_SANDBOX_GRAPH_URL)
    return str(settings.WHATSAPP_GRAPH_URL)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SendError(
            f"Meta answered HTTP {response.status_code} with a body that is not a JSON object.",
            reason=REASON_SERVER_ERROR,
            permanent=False,
            outcome_unknown=True,
        )
    return data


def _wamid(response: httpx.Response) -> str:
    messages = _json(response).get("messages")
    wamid = (
        messages[0].get("id")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict)
        else None
    )
    if not isinstance(wamid, str) or not wamid:
        # Meta said 2xx, so the message may well have gone: reconcile, do not resend.
        raise SendError(
            "Meta accepted the send but its answer names no message id.",
            reason=REASON_SERVER_ERROR,
            permanent=False,
            outcome_unknown=True,
        )
    return wamid


def _response_error(response: httpx.Response) -> SendError:
    code: int | None = None
    text = ""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        raw_code = error.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        text = str(error.get("message") or "")
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        if details and details != text:
            text = f"{text} ({details})"
    else:
        text = response.text[:200].strip()
    rule = error_rule(response.status_code, code)
    label = f"HTTP {response.status_code}" + (f", code {code}" if code is not None else "")
    return SendError(
        f"WhatsApp refused the request ({label}): {text or response.reason_phrase}",
        reason=rule.reason,
        permanent=rule.permanent,
        meta_code=code,
        retry_after=_retry_after(response),
        channel_unhealthy=rule.channel_unhealthy,
        # A gateway that gave up waiting says nothing of whether Meta's backend sent the message.
        outcome_unknown=code is None and response.status_code in (502, 504),
    )


def _transport_error(exc: httpx.TransportError) -> SendError:
    name = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout):
        return SendError(
            f"WhatsApp was not reached in time ({name}).", reason=REASON_TIMEOUT, permanent=False
        )
    if isinstance(exc, httpx.ReadTimeout | httpx.ReadError | httpx.RemoteProtocolError):
        # The whole request went out: Meta may have accepted it and only the answer was lost.
        return SendError(
            f"No answer from WhatsApp after the request was sent ({name}); it may have been delivered.",
            reason=REASON_TIMEOUT,
            permanent=False,
            outcome_unknown=True,
        )
    return SendError(f"WhatsApp could not be reached ({name}).", reason=REASON_NETWORK, permanent=False)


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0, math.ceil(float(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))


def _redacted(error: SendError, token: str) -> SendError:
    return SendError(
        error.message.replace(token, "[redacted]"),
        reason=error.reason,
        permanent=error.permanent,
        meta_code=error.meta_code,
        retry_after=error.retry_after,
        channel_unhealthy=error.channel_unhealthy,
        outcome_unknown=error.outcome_unknown,
    )


def _partial(error: SendError, wamids: list[str], total: int) -> SendError:
    partial = SendError(
        f"Part {len(wamids) + 1} of {total} failed after {len(wamids)} went out: {error.message}",
        reason=error.reason,
        permanent=False,
        meta_code=error.meta_code,
        retry_after=error.retry_after,
        channel_unhealthy=error.channel_unhealthy,
        outcome_unknown=True,
    )
    partial.details = {"sent_wamids": list(wamids)}
    return partial


def _too_large(media_id: str) -> SendError:
    return SendError(
        f"Media {media_id} is larger than {MAX_MEDIA_BYTES // (1024 * 1024)} MB.",
        reason=REASON_INVALID_REQUEST,
        permanent=True,
    )


# --- request bodies ------------------------------------------------------------------------------
def _message_bodies(request: OutboundRequest) -> list[dict[str, Any]]:
    contents = [request.content]
    if request.type == "text":
        contents = [{**request.content, "body": part} for part in split_text(request.content["body"])]
    bodies = []
    for index, content in enumerate(contents):
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": request.to,
            "type": request.type,
            request.type: content,
        }
        if request.message_uid:
            body["biz_opaque_callback_data"] = request.message_uid
        if request.reply_to_wamid and index == 0:  # quote the customer's message once, not on every part
            body["context"] = {"message_id": request.reply_to_wamid}
        bodies.append(body)
    return bodies


# --- validation ----------------------------------------------------------------------------------
def request_problem(request: OutboundRequest) -> str | None:
    """Why Meta would refuse `request` (its documented limits), or None."""
    if not request.to:
        return "The message has no recipient."
    if request.type not in SEND_TYPES:
        return f"Unsupported message type {request.type!r}."
    content = request.content
    if not isinstance(content, dict):
        return f"The {request.type} content must be an object."
    if request.type == "text":
        body = content.get("body")
        return None if isinstance(body, str) and body.strip() else "A text message needs a body."
    if request.type == "template":
        language = content.get("language")
        if not _str(content.get("name")) or not isinstance(language, dict) or not _str(language.get("code")):
            return "A template needs a name and language.code."
        return None
    if request.type in MEDIA_TYPES:
        if bool(_str(content.get("id"))) == bool(_str(content.get("link"))):
            return f"The {request.type} message needs exactly one of id and link."
        return None
    if request.type == "location":
        if content.get("latitude") is None or content.get("longitude") is None:
            return "A location needs latitude and longitude."
        return None
    if request.type == "reaction":
        if not _str(content.get("message_id")) or not isinstance(content.get("emoji"), str):
            return "A reaction needs message_id and emoji."
        return None
    return _interactive_problem(content)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _too_long(what: str, value: str, limit: int) -> str | None:
    return f"{what} is {len(value)} characters; WhatsApp allows {limit}." if len(value) > limit else None


def _interactive_problem(content: dict[str, Any]) -> str | None:
    kind = content.get("type")
    if not _str(kind):
        return "An interactive message needs a type."
    body = content.get("body")
    body_text = _str(body.get("text")) if isinstance(body, dict) else ""
    if kind in ("button", "list") and not body_text:
        return f"An interactive {kind} message needs body.text."
    header, footer = content.get("header"), content.get("footer")
    problem = (
        _too_long("The body", body_text, INTERACTIVE_BODY_MAX)
        or _too_long(
            "The header", _str(header.get("text")) if isinstance(header, dict) else "", INTERACTIVE_HEADER_MAX
        )
        or _too_long(
            "The footer", _str(footer.get("text")) if isinstance(footer, dict) else "", INTERACTIVE_FOOTER_MAX
        )
    )
    if problem:
        return problem
    action = content.get("action")
    action = action if isinstance(action, dict) else {}
    if kind == "button":
        return _buttons_problem(action.get("buttons"))
    if kind == "list":
        return _list_problem(action)
    return None


def _buttons_problem(buttons: Any) -> str | None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS_MAX:
        return f"A button message needs 1 to {BUTTONS_MAX} reply buttons."
    for button in buttons:
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(reply, dict) or not _str(reply.get("title")) or not _str(reply.get("id")):
            return "Each reply button needs an id and a title."
        problem = _too_long(
            f"Button title {reply['title']!r}", reply["title"], BUTTON_TITLE_MAX
        ) or _too_long("A button id", reply["id"], BUTTON_ID_MAX)
        if problem:
            return problem
    return None


def _list_problem(action: dict[str, Any]) -> str | None:
    button = _str(action.get("button"))
    if not button:
        return "A list message needs action.button (the text of the button that opens it)."
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= SECTIONS_MAX:
        return f"A list message needs 1 to {SECTIONS_MAX} sections."
    problem = _too_long("The list button", button, LIST_BUTTON_MAX)
    rows_total = 0
    for section in sections:
        rows = section.get("rows") if isinstance(section, dict) else None
        if not isinstance(rows, list) or not rows:
            return "Each list section needs at least one row."
        if len(sections) > 1 and not _str(section.get("title")):
            return "Each section of a list with several sections needs a title."
        problem = problem or _too_long("A section title", _str(section.get("title")), SECTION_TITLE_MAX)
        rows_total += len(rows)
        for row in rows:
            if not isinstance(row, dict) or not _str(row.get("title")) or not _str(row.get("id")):
                return "Each list row needs an id and a title."
            problem = (
                problem
                or _too_long(f"Row title {row['title']!r}", row["title"], ROW_TITLE_MAX)
                or _too_long("A row description", _str(row.get("description")), ROW_DESCRIPTION_MAX)
                or _too_long("A row id", row["id"], ROW_ID_MAX)
            )
    if rows_total > ROWS_MAX:
        return f"A list message has {rows_total} rows; WhatsApp allows {ROWS_MAX} in all."
    return problem
