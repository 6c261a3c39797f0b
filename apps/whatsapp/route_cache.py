"""The webhook's channel lookup (phone_number_id -> channel id, workspace, app secret), kept in each
process's memory so that a delivery does not pay for an ORM query and three Fernet decryptions.

Every entry is tagged with a token read from the shared cache (Redis) before the database was read;
`route_cache_invalidate` replaces the token after a channel change commits, and every process checks
it on each delivery (one Redis GET), so a new or revoked app secret holds at once everywhere. Secrets
stay in process memory: the shared cache holds only the token. With a cache that is not shared
between processes (LocMemCache, the embedded mode) a change made in one process could not reach the
others, so nothing is kept and every delivery reads the database.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

GENERATION_KEY = "whatsapp:channel-routes:generation"
# Unknown numbers are remembered too (Meta re-delivers for numbers no channel has); the bound keeps a
# stream of made-up numbers from growing the memory without end.
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class ChannelRoute:
    """What the webhook needs of a channel: where to store, and the secret that must have signed it."""

    pk: int
    workspace_id: int
    phone_number_id: str
    is_active: bool
    app_secret: str = field(repr=False)
    last_webhook_at: datetime | None


_lock = threading.Lock()
_entries: dict[str, tuple[str, float, ChannelRoute | None]] = {}  # number -> (token, loaded at, route)


def route_cache_enabled() -> bool:
    backend = settings.CACHES["default"]["BACKEND"]
    shared = not backend.endswith(("LocMemCache", "DummyCache"))
    return shared and settings.WHATSAPP_CHANNEL_CACHE_SECONDS > 0


def route_cache_token() -> str | None:
    """The current token, created when absent (a flushed cache invalidates too); None when the cache
    cannot be reached, and then nothing is served from memory."""
    try:
        token = cache.get(GENERATION_KEY)
        if token is None:
            cache.add(GENERATION_KEY, secrets.token_hex(8), timeout=None)
            token = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - Redis down: the database answers instead
        logger.warning("channel route cache unavailable; reading channels from the database")
        return None
    return token if isinstance(token, str) else None


def route_cache_get(
    phone_number_ids: list[str], token: str
) -> tuple[dict[str, ChannelRoute | None], list[str]]:
    """The remembered routes under this token (None: no channel has the number), and the numbers
    that must be read from the database."""
    found: dict[str, ChannelRoute | None] = {}
    missing = []
    oldest = time.monotonic() - settings.WHATSAPP_CHANNEL_CACHE_SECONDS
    for number in phone_number_ids:
        entry = _entries.get(number)
        if entry is not None and entry[0] == token and entry[1] >= oldest:
            found[number] = entry[2]
        else:
            missing.append(number)
    return found, missing


def route_cache_put(routes: dict[str, ChannelRoute | None], token: str) -> None:
    """Remember routes read from the database after `token` was read (a change committed in between
    has replaced the token, so these entries are never served)."""
    now = time.monotonic()
    with _lock:
        if len(_entries) + len(routes) > MAX_ENTRIES:
            _entries.clear()
        for number, route in routes.items():
            _entries[number] = (token, now, route)


def route_cache_invalidate() -> None:
    """Forget every process's routes once the current transaction commits (at once when none is open)."""
    transaction.on_commit(_token_replace, robust=True)


def _token_replace() -> None:
    with _lock:
        _entries.clear()
    try:
        cache.set(GENERATION_KEY, secrets.token_hex(8), timeout=None)
    except Exception:  # noqa: BLE001 - the other processes keep their routes until the TTL
        logger.exception(
            "channel route cache not invalidated; other processes forget within %ss",
            settings.WHATSAPP_CHANNEL_CACHE_SECONDS,
        )
