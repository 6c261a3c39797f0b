"""The outgoing alert webhook: a JSON POST signed with HMAC-SHA256, through the egress guard.

The receiver checks `X-Alert-Signature: sha256=<hex>` over the raw body with the rule's secret
(as Meta's X-Hub-Signature-256), and `X-Alert-Delivery` (the alert id) makes a retry recognisable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from chatbot import egress
from chatbot.exceptions import DomainError, TransientError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SIGNATURE_HEADER = "X-Alert-Signature"


class WebhookRefused(DomainError):
    """The receiver answered with a 4xx other than 408/429: trying again would only repeat it."""

    code = "webhook_refused"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_post(*, url: str, secret: str, payload: dict[str, Any], delivery_id: str) -> int:
    """POST `payload`; the receiver's status code when it took it (2xx). TransientError for a network
    failure, a 5xx, 408 or 429; WebhookRefused for another 4xx (or a 3xx: redirects are not followed)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        "X-Alert-Delivery": delivery_id,
        "User-Agent": "chatbot-alerts/1",
    }
    try:
        with egress.client(timeout=TIMEOUT) as client:
            response = client.post(url, content=body, headers=headers)
    except egress.EgressRefused as exc:
        raise WebhookRefused(exc.message) from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"{type(exc).__name__}") from exc
    if 200 <= response.status_code < 300:
        return response.status_code
    detail = f"HTTP {response.status_code}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise TransientError(detail, details={"status": response.status_code})
    raise WebhookRefused(detail, details={"status": response.status_code})
