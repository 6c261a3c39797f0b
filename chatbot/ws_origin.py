"""Which web pages may open a WebSocket here: the socket is logged in by the session cookie, which the
browser sends whatever page opens it, so the Origin header is what stops another site's page.

Allowed: the host's own https origin (a Host in ALLOWED_HOSTS), and the origins of
CSRF_TRUSTED_ORIGINS (the same list that lets those pages post forms with the cookie; `*.` patterns
allowed). Only with DEBUG: http on the host itself and loopback pages on any port (runserver and
the ws process listen on different ports). A missing Origin is refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _trusted(scheme: str, netloc: str) -> bool:
    for pattern in settings.CSRF_TRUSTED_ORIGINS:
        trusted = urlsplit(pattern.lower())
        if trusted.scheme != scheme:
            continue
        if trusted.netloc.startswith("*.") and is_same_domain(netloc, trusted.netloc[1:]):
            return True
        if trusted.netloc == netloc:
            return True
    return False


def origin_allowed(*, origin: str, host: str) -> bool:
    try:
        parsed = urlsplit(origin.strip().lower())
        hostname = parsed.hostname
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https") or not hostname:
        return False
    if settings.DEBUG and hostname in LOOPBACK:
        return True
    host = host.strip().lower()
    if host and validate_host(split_domain_port(host)[0], settings.ALLOWED_HOSTS):
        own_schemes = ("https", "http") if settings.DEBUG else ("https",)
        if parsed.scheme in own_schemes and parsed.netloc == host:
            return True
    return _trusted(parsed.scheme, parsed.netloc)


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


class WebSocketOriginValidator:
    """ASGI middleware: a handshake from an origin not allowed is refused (HTTP 403)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if origin_allowed(origin=_header(scope, b"origin"), host=_header(scope, b"host")):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
