"""Shared pacing (GCRA, the "virtual scheduling" form of a token bucket).

Every worker reserves a slot before sending; the answer is how long to wait for it. With Redis
the state is one key per bucket updated by a Lua script (atomic, on Redis's clock, shared by
all machines). Without Redis (embedded mode) the state is a small file per bucket under
DATA_DIR, updated under an exclusive lock, shared by every process of this machine (both
through `chatbot.shared_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from chatbot import shared_state

T = TypeVar("T")


@dataclass(frozen=True)
class Reservation:
    wait: float  # seconds until the reserved slot (0 = now)
    reserved: bool  # False: the slot is further than max_wait away and nothing was taken


class Pacer(Protocol):
    def reserve(self, key: str, *, rate: float, burst: int, max_wait: float) -> Reservation: ...

    def slow_down(self, key: str, *, seconds: float) -> None: ...

    def hold(self, key: str, *, seconds: float) -> None: ...

    def reserve_many(
        self, key: str, *, rate: float, burst: int, max_wait: float, count: int
    ) -> list[float]: ...

    def reserve_each(
        self, requests: Sequence[tuple[str, float, int]], *, max_wait: float
    ) -> list[Reservation]: ...


def _gcra(tat: float, now: float, interval: float, burst: int, max_wait: float) -> tuple[float, float | None]:
    """(wait, new_tat or None when not reserved). `tat` is the theoretical arrival time."""
    tat = max(tat, now)
    wait = max(0.0, tat - (burst - 1) * interval - now)
    if wait > max_wait:
        return wait, None
    return wait, tat + interval


_RESERVE_LUA = """
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - (burst - 1) * interval - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {tostring(wait), 0} end
local ttl = math.ceil((tat + interval - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return {tostring(wait), 1}
"""

_SLOW_DOWN_LUA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""

# No slot sooner than ARGV[2] seconds from now; holds taken together do not add up.
_HOLD_LUA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ = now + tonumber(ARGV[2])
if tat < until_ then tat = until_ end
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""

# `count` consecutive slots on one bucket in one round trip; stops at the first beyond max_wait.
_RESERVE_MANY_LUA = """
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local count = tonumber(ARGV[5])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local waits = {}
for i = 1, count do
  local wait = tat - (burst - 1) * interval - now
  if wait < 0 then wait = 0 end
  if wait > max_wait then break end
  waits[#waits + 1] = tostring(wait)
  tat = tat + interval
end
if #waits > 0 then
  redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return waits
"""

# One slot on each of several buckets (ARGV: max_wait, then interval and burst per key) in one trip.
_RESERVE_EACH_LUA = """
local max_wait = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i + 1])
  local burst = tonumber(ARGV[2 * i + 2])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - (burst - 1) * interval - now
  if wait < 0 then wait = 0 end
  if wait > max_wait then
    out[#out + 1] = '-' .. tostring(wait)
  else
    redis.call('SET', key, tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
    out[#out + 1] = tostring(wait)
  end
end
return out
"""


class RedisPacer:
    def __init__(self, client: Any) -> None:
        self._reserve = shared_state.Script(client, _RESERVE_LUA)
        self._slow_down = shared_state.Script(client, _SLOW_DOWN_LUA)
        self._hold = shared_state.Script(client, _HOLD_LUA)
        self._reserve_many = shared_state.Script(client, _RESERVE_MANY_LUA)
        self._reserve_each = shared_state.Script(client, _RESERVE_EACH_LUA)

    def reserve(self, key: str, *, rate: float, burst: int, max_wait: float) -> Reservation:
        wait, reserved = self._reserve(keys=[f"pace:{key}"], args=[1.0 / rate, max(burst, 1), max_wait])
        return Reservation(wait=float(wait), reserved=bool(int(reserved)))

    def slow_down(self, key: str, *, seconds: float) -> None:
        self._slow_down(keys=[f"pace:{key}"], args=[seconds])

    def hold(self, key: str, *, seconds: float) -> None:
        self._hold(keys=[f"pace:{key}"], args=[seconds])

    def reserve_many(self, key: str, *, rate: float, burst: int, max_wait: float, count: int) -> list[float]:
        """Up to `count` consecutive slots, as their waits; fewer when the rest are beyond max_wait."""
        if count <= 0:
            return []
        waits = self._reserve_many(keys=[f"pace:{key}"], args=[1.0 / rate, max(burst, 1), max_wait, count])
        return [float(wait) for wait in waits]

    def reserve_each(
        self, requests: Sequence[tuple[str, float, int]], *, max_wait: float
    ) -> list[Reservation]:
        """One slot on each (key, rate, burst), in one step; a key whose slot is too far is left untouched."""
        if not requests:
            return []
        args: list[float] = [max_wait]
        for _, rate, burst in requests:
            args += [1.0 / rate, max(burst, 1)]
        answers = self._reserve_each(keys=[f"pace:{key}" for key, _, _ in requests], args=args)
        texts = [a.decode() if isinstance(a, bytes) else str(a) for a in answers]
        return [Reservation(wait=abs(float(a)), reserved=not a.startswith("-")) for a in texts]


class FilePacer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = shared_state.JsonFiles(folder)

    def _update(self, key: str, change: Callable[[float, float], tuple[T, float | None]]) -> T:
        def on_document(data: dict[str, float] | None) -> tuple[T, dict[str, float] | None]:
            result, new_tat = change(float(data["tat"]) if data else 0.0, shared_state.now())
            return result, data if new_tat is None else {"tat": new_tat}

        return self._files.update(key, on_document)

    def reserve(self, key: str, *, rate: float, burst: int, max_wait: float) -> Reservation:
        def change(tat: float, now: float) -> tuple[Reservation, float | None]:
            wait, new_tat = _gcra(tat, now, 1.0 / rate, max(burst, 1), max_wait)
            return Reservation(wait=wait, reserved=new_tat is not None), new_tat

        return self._update(key, change)

    def slow_down(self, key: str, *, seconds: float) -> None:
        self._update(key, lambda tat, now: (None, max(tat, now) + seconds))

    def hold(self, key: str, *, seconds: float) -> None:
        self._update(key, lambda tat, now: (None, max(tat, now + seconds)))

    def reserve_many(self, key: str, *, rate: float, burst: int, max_wait: float, count: int) -> list[float]:
        def change(tat: float, now: float) -> tuple[list[float], float | None]:
            waits: list[float] = []
            for _ in range(count):
                wait, new_tat = _gcra(tat, now, 1.0 / rate, max(burst, 1), max_wait)
                if new_tat is None:
                    break
                waits.append(wait)
                tat = new_tat
            return waits, (tat if waits else None)

        result: list[float] = self._update(key, change)
        return result

    def reserve_each(
        self, requests: Sequence[tuple[str, float, int]], *, max_wait: float
    ) -> list[Reservation]:
        return [self.reserve(key, rate=rate, burst=burst, max_wait=max_wait) for key, rate, burst in requests]


def pacer() -> Pacer:
    return shared_state.select("pacing", redis=RedisPacer, files=FilePacer)
