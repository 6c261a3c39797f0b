"""State that every process of an installation shares: Redis when REDIS_URL is set, else files.

The circuit breakers, the pacer, the rate limits and the shared metrics keep small pieces of state
that every worker must see. This module owns how: which store is used (`select`), Redis Lua scripts
that read the time and change a key in one atomic step (`Script`), and the embedded fallback, one
small JSON document per key under DATA_DIR changed under an exclusive lock (`JsonFiles`), shared by
every process of this machine. The users keep only their own algorithm and key layout.

Time: a Redis script reads Redis's clock (one clock for every machine), a file store reads
time.time(). A test sets `clock` (the `shared_clock` fixture) to let time pass without waiting.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings

Clock = Callable[[], float]
T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F")

# None: each backend's own clock. Read at every call, so a test can set it after the stores exist.
clock: Clock | None = None


def now() -> float:
    """The time a file store acts at (a Redis script reads its own unless `clock` is set)."""
    return (clock or time.time)()


def select(area: str, *, redis: Callable[[Any], R], files: Callable[[Path], F]) -> R | F:
    """The store of `area`: `redis(client)` when REDIS_URL is set, else `files(DATA_DIR / area)`.

    Built once per (REDIS_URL, folder), so tests that change either get a store of their own."""
    chosen: R | F = _select(settings.REDIS_URL, str(settings.DATA_DIR / area), redis, files)
    return chosen


@lru_cache(maxsize=32)
def _select(redis_url: str, folder: str, redis: Callable[[Any], Any], files: Callable[[Path], Any]) -> Any:
    if redis_url:
        from django_redis import get_redis_connection

        return redis(get_redis_connection("default"))
    return files(Path(folder))


def cache_clear() -> None:
    """Forget the stores built so far (tests that point DATA_DIR somewhere new)."""
    _select.cache_clear()


_NOW_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""


class Script:
    """A Lua script Redis runs atomically. It starts with `now` (seconds, a float) already set:
    Redis's clock, or `clock` when set; the caller's arguments are ARGV[2], ARGV[3], ..."""

    def __init__(self, client: Any, body: str) -> None:
        self._script = client.register_script(_NOW_LUA + body)

    def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        return self._script(keys=keys, args=["" if clock is None else repr(clock()), *args])


class JsonFiles:
    """One small JSON document per key in `folder`; each change reads, changes and writes it under
    an exclusive lock, so no change of another process is lost. A document that does not parse
    (a crash mid-write) reads as missing: the state restarts rather than failing every caller."""

    def __init__(self, folder: Path, *, suffix: str = "", hashed: bool = True) -> None:
        # Each user keeps the file names it always had, so an upgrade finds the state it left.
        self.folder = folder
        self.suffix = suffix
        self.hashed = hashed
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()[:40] if self.hashed else key
        return self.folder / (name + self.suffix)

    def update(self, key: str, change: Callable[[Any], tuple[T, Any]]) -> T:
        """`change(document or None)` returns (result, new document); written only when it differs."""
        fd = os.open(self.path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            document = _parse(_read_all(fd))
            result, changed = change(document)
            if changed != document:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(changed).encode())
            return result
        finally:
            os.close(fd)  # closing releases the lock

    def read(self, key: str) -> Any:
        """The document of `key`, or None (never written, or torn)."""
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return _parse(_read_all(fd))
        finally:
            os.close(fd)

    def documents(self) -> Iterator[Any]:
        """Every document in the folder (a store that lists its keys writes them inside)."""
        for path in sorted(self.folder.glob("*" + self.suffix)):
            try:
                document = _parse(path.read_bytes())
            except OSError:
                continue  # removed right now: the next reader sees the rest
            if document is not None:
                yield document

    def clear(self) -> None:
        for path in self.folder.iterdir():
            path.unlink(missing_ok=True)


def _read_all(fd: int) -> bytes:
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    return raw


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
