"""The webhook's channel lookup (phone_number_id -> channel id, workspace, app secret), kept in each
process's memory so that a delivery costs no query, no Fernet decryption and no Redis round trip.

Every change to a channel is announced on a Redis pub/sub channel after it commits
(`route_cache_invalidate`); a thread in each process listens and forgets everything it holds. Entries
are tagged with the process's generation as it was before the database was read, so a route read
while a change was committing is never served after the announcement. Memory serves only while the
listener is subscribed: before its first subscription, and from a lost connection until it has
subscribed again, every delivery reads the database, so no announcement can be missed. Without Redis
(the embedded mode) nothing is kept. Secrets stay in process memory: the announcement holds none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# Unknown numbers are remembered too (Meta re-delivers for numbers no channel has); the bound keeps a
# stream of made-up numbers from growing the memory without end.
MAX_ENTRIES = 10_000
RECONNECT_SECONDS = 1.0


@dataclass(frozen=True)
class ChannelRoute:
    """What the webhook needs of a channel: where to store, and the secret that must have signed it."""

    pk: int
    workspace_id: int
    phone_number_id: str
    is_active: bool
    app_secret: str = field(repr=False)
    last_webhook_at: datetime | None


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[
            str, tuple[int, float, ChannelRoute | None]
        ] = {}  # number -> (generation, at, route)
        self.generation = 0
        self.listening = False  # subscribed: announcements reach this process
        self.listener_pid = 0  # the listener thread does not survive a fork (gunicorn's preload)
        # The last announcement heard: pub/sub keeps order, so once a given one is heard every earlier
        # one has been applied (how a probe, or a test, knows the process caught up).
        self.last_heard: bytes = b""

    def forget(self) -> None:
        with self.lock:
            self.generation += 1
            self.entries.clear()


_state = _State()


def announce_channel() -> str:
    """Pub/sub ignores Redis's database numbers: the name carries the database and the key prefix, so
    installations sharing a server do not flush each other's routes."""
    db = redis.connection.parse_url(settings.REDIS_URL).get("db", 0)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:{db}:whatsapp:channel-routes:changed"


def route_cache_enabled() -> bool:
    return bool(settings.REDIS_URL) and settings.WHATSAPP_CHANNEL_CACHE_SECONDS > 0


def route_cache_generation() -> int | None:
    """The generation to read and store under, or None when memory must not serve (no listener yet)."""
    if _state.listener_pid != os.getpid():
        _listener_start()
    return _state.generation if _state.listening else None


def route_cache_get(
    phone_number_ids: list[str], generation: int
) -> tuple[dict[str, ChannelRoute | None], list[str]]:
    """The remembered routes (None: no channel has the number), and the numbers to read from the database."""
    found: dict[str, ChannelRoute | None] = {}
    missing = []
    oldest = time.monotonic() - settings.WHATSAPP_CHANNEL_CACHE_SECONDS
    for number in phone_number_ids:
        entry = _state.entries.get(number)
        if entry is not None and entry[0] == generation and entry[1] >= oldest:
            found[number] = entry[2]
        else:
            missing.append(number)
    return found, missing


def route_cache_put(routes: dict[str, ChannelRoute | None], generation: int) -> None:
    """Remember routes read from the database under the generation read before the query (an
    announcement in between has moved the generation on, so these are never served)."""
    now = time.monotonic()
    with _state.lock:
        if generation != _state.generation:
            return
        if len(_state.entries) + len(routes) > MAX_ENTRIES:
            _state.entries.clear()
        for number, route in routes.items():
            _state.entries[number] = (generation, now, route)


def route_cache_invalidate() -> None:
    """Make every process forget its routes once the current transaction commits (at once when none is open)."""
    transaction.on_commit(_announce, robust=True)


def _announce() -> None:
    _state.forget()
    if not settings.REDIS_URL:
        return
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).publish(announce_channel(), b"1")
    except redis.RedisError:
        # The other processes keep their routes until the TTL; their listeners, if Redis is down
        # for them too, have stopped serving from memory already.
        logger.exception(
            "channel change not announced; other processes forget within %ss",
            settings.WHATSAPP_CHANNEL_CACHE_SECONDS,
        )


def _listener_start() -> None:
    with _state.lock:
        if _state.listener_pid == os.getpid():
            return
        _state.listener_pid = os.getpid()
        _state.listening = False
        _state.entries.clear()
    threading.Thread(target=_listen, name="channel-route-listener", daemon=True).start()


def _listen() -> None:
    pid = os.getpid()
    while _state.listener_pid == pid:
        pubsub = None
        try:
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                # A silently dropped connection is noticed within ~15 s (a PING every 5 s, 10 s
                # to answer); until then announcements could be missed, the TTL aside.
                socket_timeout=10,
                health_check_interval=5,
                client_name=f"channel-route-listener-{pid}",
            )
            pubsub = client.pubsub(ignore_subscribe_messages=False)
            pubsub.subscribe(announce_channel())
            while _state.listener_pid == pid:
                message = pubsub.get_message(timeout=5.0)
                if message is None:
                    continue
                # Anything read before the subscription was confirmed may be stale.
                _state.forget()
                if message["type"] == "subscribe":
                    _state.listening = True
                elif message["type"] == "message":
                    _state.last_heard = message["data"]
        except Exception:  # noqa: BLE001 - keep listening; memory does not serve meanwhile
            logger.warning("channel route listener lost Redis; reading channels from the database")
        finally:
            _state.listening = False
            _state.forget()
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001, S110 - the connection is gone already
                    pass
        time.sleep(RECONNECT_SECONDS)
