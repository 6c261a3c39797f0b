"""Sliding-window rate limits shared by every process: at most `limit` hits in any `window` seconds.

The window slides: each hit is remembered with its time, and a new hit is allowed only while fewer
than `limit` hits lie within the last `window` seconds, so a burst straddling a boundary can never
pass twice the limit (a fixed window can). With Redis the hits of a key are one sorted set updated
by a Lua script (atomic, on Redis's clock). Without Redis (embedded mode) they are a small file
per key under DATA_DIR, changed under an exclusive lock, shared by every process of this machine
(both through `chatbot.shared_state`).

Exposed as DRF throttles (per user, and per IP for anonymous requests) and a middleware that
adds X-RateLimit-* headers to the API's answers.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from chatbot import shared_state

EXEMPT_PREFIXES = ("/webhooks/", "/healthz", "/readyz", "/metrics")
DECISION_ATTR = "ratelimit_decision"
T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int  # hits left in the window after this one
    reset_seconds: float  # until the window holds no hit of this key (the full limit is back)
    retry_after: float  # 0 when allowed; else until the oldest hit leaves the window


class Limiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: float, *, hit_id: str = "") -> Decision: ...

    def forget(self, key: str, hit_id: str = "") -> None:
        """Take back one allowed hit (by the `hit_id` it was made with), or every hit of the key."""


Hit = tuple[float, str]  # (time, id)


def _decide(
    hits: list[Hit], now: float, limit: int, window: float, hit_id: str
) -> tuple[Decision, list[Hit]]:
    """The embedded algorithm; mirrors _HIT_LUA. `hits` are the earlier allowed hits."""
    hits = sorted(h for h in hits if h[0] > now - window)
    allowed = len(hits) < limit
    if allowed:
        hits.append((now, hit_id))
    retry_after = 0.0 if allowed else max(0.0, hits[0][0] + window - now)
    reset = max(0.0, hits[-1][0] + window - now) if hits else 0.0
    decision = Decision(allowed, limit, max(0, limit - len(hits)), reset, retry_after)
    return decision, hits


_HIT_LUA = """
now = math.floor(now * 1000)
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
local retry = 0
if allowed == 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  retry = tonumber(oldest[2]) + window - now
end
local reset = 0
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then reset = tonumber(newest[2]) + window - now end
redis.call('PEXPIRE', KEYS[1], window + 1000)
return {allowed, count, reset, retry}
"""


class RedisLimiter:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._script = shared_state.Script(client, _HIT_LUA)

    def hit(self, key: str, limit: int, window_seconds: float, *, hit_id: str = "") -> Decision:
        window_ms = max(1, int(window_seconds * 1000))
        # A unique member per hit: two hits in the same millisecond must both count.
        allowed, count, reset, retry = self._script(
            keys=[f"ratelimit:{key}"], args=[limit, window_ms, hit_id or uuid.uuid4().hex]
        )
        return Decision(
            allowed=bool(int(allowed)),
            limit=limit,
            remaining=max(0, limit - int(count)),
            reset_seconds=max(0.0, float(reset) / 1000),
            retry_after=max(0.0, float(retry) / 1000),
        )

    def forget(self, key: str, hit_id: str = "") -> None:
        if hit_id:
            self._client.zrem(f"ratelimit:{key}", hit_id)
        else:
            self._client.delete(f"ratelimit:{key}")

    def forget_matching(self, pattern: str) -> None:
        for name in self._client.scan_iter(match=f"ratelimit:{pattern}", count=500):
            self._client.delete(name)


def _parse_hits(document: Any) -> list[Hit]:
    try:
        # [time, id] pairs; a bare time is a hit written before hits had ids.
        return [(float(h[0]), str(h[1])) if isinstance(h, list) else (float(h), "") for h in document or []]
    except (ValueError, TypeError, IndexError):
        return []  # not a list of hits: forget the window rather than fail requests


class FileLimiter:
    def __init__(self, folder: Path, clock: Callable[[], float] | None = None) -> None:
        self.folder = folder
        self.clock = clock or shared_state.now
        self._files = shared_state.JsonFiles(folder)

    def hit(self, key: str, limit: int, window_seconds: float, *, hit_id: str = "") -> Decision:
        def change(hits: list[Hit]) -> tuple[Decision, list[Hit]]:
            return _decide(hits, self.clock(), limit, window_seconds, hit_id)

        return self._change(key, change)

    def forget(self, key: str, hit_id: str = "") -> None:
        self._change(key, lambda hits: (None, [h for h in hits if h[1] != hit_id] if hit_id else []))

    def clear(self) -> None:
        self._files.clear()

    def _change(self, key: str, change: Callable[[list[Hit]], tuple[T, list[Hit]]]) -> T:
        def on_document(document: Any) -> tuple[T, list[list[Any]]]:
            result, hits = change(_parse_hits(document))
            return result, [list(h) for h in hits]

        return self._files.update(key, on_document)


def limiter(area: str = "") -> Limiter:
    """The store every process of the installation shares: Redis, else files in DATA_DIR (an
    `area` keeps its files in a folder of its own, so they can be cleared on their own)."""
    folder = f"ratelimit/{area}" if area else "ratelimit"
    return shared_state.select(folder, redis=RedisLimiter, files=FileLimiter)


def hit(key: str, limit: int, window_seconds: float) -> Decision:
    return limiter().hit(key, limit, window_seconds)


def parse_rate(rate: str) -> tuple[int, int]:
    """ "300/60" -> (300, 60): that many hits per that many seconds."""
    try:
        count, seconds = (int(part) for part in rate.split("/"))
    except ValueError as exc:
        raise ImproperlyConfigured(f"a rate limit is written N/SECONDS, e.g. 300/60; got {rate!r}") from exc
    if count < 1 or seconds < 1:
        raise ImproperlyConfigured(f"a rate limit needs N >= 1 and SECONDS >= 1; got {rate!r}")
    return count, seconds


def exempt(path: str) -> bool:
    return path.startswith(EXEMPT_PREFIXES)


class _SlidingWindowThrottle(BaseThrottle):
    setting = ""
    decision: Decision | None = None

    def subject(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        subject = self.subject(request)
        if subject is None or exempt(request.path):
            return True
        limit, window = parse_rate(getattr(settings, self.setting))
        self.decision = hit(f"api:{subject}", limit, window)
        # The middleware turns the decision into headers, also on the 429 DRF answers with.
        setattr(request._request, DECISION_ATTR, self.decision)
        return self.decision.allowed

    def wait(self) -> float | None:
        return math.ceil(self.decision.retry_after) if self.decision else None


class UserRateLimit(_SlidingWindowThrottle):
    """Per logged-in user, whatever address they call from."""

    setting = "API_RATE_LIMIT_USER"

    def subject(self, request: Request) -> str | None:
        user = request.user
        return f"user:{user.pk}" if user and user.is_authenticated else None


class AnonRateLimit(_SlidingWindowThrottle):
    """Per client IP, for requests without a login (honours REST_FRAMEWORK["NUM_PROXIES"])."""

    setting = "API_RATE_LIMIT_ANON"

    def subject(self, request: Request) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return f"ip:{self.get_ident(request)}"


class RateLimitHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision: Decision | None = getattr(request, DECISION_ATTR, None)
        if decision is not None and not exempt(request.path):
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
            response["X-RateLimit-Reset"] = str(math.ceil(decision.reset_seconds))
            if not decision.allowed:
                response["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
        return response
