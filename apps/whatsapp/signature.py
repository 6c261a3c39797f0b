"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value Meta would send for `body` (also used by the Graph API stand-in)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def matching_secret(body: bytes, header: str, secrets: Iterable[str]) -> str | None:
    """The secret among `secrets` that signed `body`, compared in constant time; None if none did."""
    if not header.startswith(PREFIX):
        return None
    presented = header.encode()
    found = None
    for secret in secrets:
        if secret and hmac.compare_digest(sign(body, secret).encode(), presented):
            found = secret  # no early exit: the time taken does not depend on which secret matched
    return found
