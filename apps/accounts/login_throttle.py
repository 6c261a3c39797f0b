"""Failed-login counting per username and per IP, kept in the shared cache.

A counter per key lives for one window from its first failure; reaching the limit blocks
that key until the window ends (answered as 429 with Retry-After).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _keys(kind: str, value: str) -> tuple[str, str]:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"loginfail:{kind}:{digest}", f"loginfail:{kind}:{digest}:start"


def _subjects(username: str, ip: str | None) -> list[tuple[str, str]]:
    subjects = [("username", username)]
    if ip:
        subjects.append(("ip", ip))
    return subjects


def retry_after(*, username: str, ip: str | None) -> int:
    """Seconds until a login may be tried again; 0 when it may be tried now."""
    wait = 0
    now = time.time()
    for kind, value in _subjects(username, ip):
        limit, window = settings.LOGIN_FAILURE_LIMITS[kind]
        count_key, start_key = _keys(kind, value)
        if (cache.get(count_key) or 0) >= limit:
            started = cache.get(start_key) or now
            wait = max(wait, int(started + window - now) + 1)
    return wait


def record_failure(*, username: str, ip: str | None) -> None:
    now = time.time()
    for kind, value in _subjects(username, ip):
        _, window = settings.LOGIN_FAILURE_LIMITS[kind]
        count_key, start_key = _keys(kind, value)
        if cache.add(count_key, 0, window):
            cache.set(start_key, now, window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr: start a fresh window
            cache.set(count_key, 1, window)
            cache.set(start_key, now, window)


def clear(*, username: str) -> None:
    cache.delete_many(list(_keys("username", username)))
