"""Circuit breakers shared by every worker: stop calling a service that keeps failing.

closed --N consecutive failures--> open --cool-down--> half_open (ONE caller gets a trial call)
half_open --success--> closed;  half_open --failure--> open (another cool-down).

With Redis the state of a breaker is one hash updated by a Lua script (atomic, on Redis's
clock, shared by all machines). Without Redis (embedded mode) it is a small file per breaker
under DATA_DIR, changed under an exclusive lock, shared by every process of this machine
(both through `chatbot.shared_state`).
Callers pass `failures` and `cooldown` on every call, so nothing but the state is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from chatbot import prometheus, shared_state

logger = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}
STATES = tuple(STATE_VALUES)  # one enum in the OpenAPI schema (SPECTACULAR_SETTINGS)
_NAMES_KEY = "circuit:names"


@dataclass
class _Record:
    state: str = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trial_at: float = 0.0  # when the half-open trial was handed out


def _transition(record: _Record, op: str, now: float, failures: int, cooldown: float) -> bool:
    """Apply `op` to `record` in place; for "allow", whether the caller may call. Mirrors _LUA."""
    if op == "allow":
        if record.state == "closed":
            return True
        if record.state == "open":
            if now - record.opened_at < cooldown:
                return False
        elif now - record.trial_at < cooldown:
            return False  # a trial is out; a trial whose caller vanished is re-granted after a cool-down
        record.state, record.trial_at = "half_open", now
        return True
    if op == "success":
        record.state, record.failures = "closed", 0
    elif op == "failure":
        if record.state == "half_open":
            record.state, record.opened_at = "open", now
        elif record.state == "closed":
            record.failures += 1
            if record.failures >= failures:
                record.state, record.opened_at = "open", now
        # already open: a late failure from a call started before opening changes nothing
    elif op == "reset":
        record.state, record.failures, record.opened_at, record.trial_at = "closed", 0, 0.0, 0.0
    return True


_LUA = """
local op = ARGV[2]
local limit = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local name = ARGV[5]
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at', 'trial_at')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0')
local opened_at = tonumber(h[3] or '0')
local trial_at = tonumber(h[4] or '0')
if op == 'state' then return {state, 1} end
local allowed = 1
if op == 'allow' then
  if state == 'closed' then
    if failures == 0 then return {state, 2} end
    return {state, 1}
  end
  if state == 'open' then
    if now - opened_at < cooldown then return {state, 0} end
  elseif now - trial_at < cooldown then
    return {state, 0}
  end
  state = 'half_open'
  trial_at = now
elseif op == 'success' then
  if state == 'closed' and failures == 0 then return {state, 1} end
  state = 'closed'
  failures = 0
elseif op == 'failure' then
  if state == 'half_open' then
    state = 'open'
    opened_at = now
  elseif state == 'closed' then
    failures = failures + 1
    if failures >= limit then
      state = 'open'
      opened_at = now
    end
  end
elseif op == 'reset' then
  state = 'closed'
  failures = 0
  opened_at = 0
  trial_at = 0
end
redis.call('HSET', KEYS[1], 'state', state, 'failures', failures, 'opened_at', tostring(opened_at),
  'trial_at', tostring(trial_at))
redis.call('SADD', KEYS[2], name)
return {state, allowed}
"""


# What `apply` answers besides the state: 0 refused, 1 allowed, CLEAN allowed with nothing to reset
# (closed, no failure counted), so the caller's success needs no round trip.
CLEAN = 2


class _Store(Protocol):
    def apply(self, name: str, op: str, failures: int, cooldown: float) -> tuple[str, int]: ...

    def states(self) -> dict[str, str]: ...


class RedisStore:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._script = shared_state.Script(client, _LUA)

    def apply(self, name: str, op: str, failures: int, cooldown: float) -> tuple[str, int]:
        state, allowed = self._script(
            keys=[f"circuit:{name}", _NAMES_KEY], args=[op, failures, cooldown, name]
        )
        return _text(state), int(allowed)

    def states(self) -> dict[str, str]:
        names = sorted(_text(n) for n in self._client.smembers(_NAMES_KEY))
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hget(f"circuit:{name}", "state")
        return {name: _text(state or b"closed") for name, state in zip(names, pipe.execute(), strict=True)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FileStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = shared_state.JsonFiles(folder, suffix=".json")

    def apply(self, name: str, op: str, failures: int, cooldown: float) -> tuple[str, int]:
        if op == "state":
            data = self._files.read(name) or {}
            return data.get("state", "closed"), 1

        def change(data: dict[str, Any] | None) -> tuple[tuple[str, int], dict[str, Any] | None]:
            record = _Record(**{k: v for k, v in (data or {}).items() if k != "name"})
            clean = op == "allow" and record.state == "closed" and record.failures == 0
            allowed = _transition(record, op, shared_state.now(), failures, cooldown)
            untouched = data is None and record == _Record()  # nothing worth writing yet
            answer = CLEAN if clean else int(allowed)
            return (record.state, answer), None if untouched else {"name": name, **record.__dict__}

        result: tuple[str, int] = self._files.update(name, change)
        return result

    def states(self) -> dict[str, str]:
        found = {
            data["name"]: data.get("state", "closed")
            for data in self._files.documents()
            if isinstance(data, dict) and "name" in data
        }
        return dict(sorted(found.items()))


def _store() -> _Store:
    return shared_state.select("circuit", redis=RedisStore, files=FileStore)


class Breaker:
    """A handle on the shared breaker `name`; cheap to create, holds no shared state of its own
    (only whether its last `allow` found it clean: take one handle per call)."""

    def __init__(self, name: str, *, failures: int = 3, cooldown: float = 30.0) -> None:
        self.name = name
        self.failures = max(1, failures)
        self.cooldown = cooldown
        self._clean = False

    def _apply(self, op: str) -> tuple[str, int]:
        try:
            return _store().apply(self.name, op, self.failures, self.cooldown)
        except (RedisError, OSError):
            # The breaker protects a call; losing its state (Redis restarting) must not fail the call
            # itself, nor leave a half-done send behind. Without state it behaves as closed.
            logger.warning("circuit %s: state unavailable, treated as closed", self.name, exc_info=True)
            return "closed", 1

    def allow(self) -> bool:
        """May the caller call now? In half-open state only the caller that got True may; report back."""
        state, allowed = self._apply("allow")
        self._clean = allowed == CLEAN
        if allowed and state == "half_open":
            logger.info("circuit %s half-open: one trial call", self.name)
        return allowed > 0

    def success(self) -> None:
        # Closed with no failure counted when this call was let through: nothing to reset, no round
        # trip (a send makes one, not two). A failure of another call in between stays counted
        # until the next success that starts after it.
        if self._clean:
            self._clean = False
            return
        self._apply("success")

    def failure(self) -> None:
        state, _ = self._apply("failure")
        if state == "open":
            logger.warning("circuit %s open", self.name)

    def reset(self) -> None:
        self._apply("reset")

    def state(self) -> State:
        state, _ = self._apply("state")
        return state  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"Breaker({self.name!r}, failures={self.failures}, cooldown={self.cooldown})"


def breaker(name: str, failures: int = 3, cooldown: float = 30.0) -> Breaker:
    return Breaker(name, failures=failures, cooldown=cooldown)


def all_states() -> dict[str, str]:
    """Every breaker ever used, by name: "closed" | "open" | "half_open"."""
    return _store().states()


_DECLARED: set[str] = set()


def declare(*names: str) -> None:
    """Breakers /metrics lists from the start (closed until used), so an alert on the gauge has a
    series before the first failure, not only after it."""
    _DECLARED.update(names)


class _CircuitCollector(prometheus.LiveCollector):
    """Read on every /metrics scrape, so the gauge shows the state every worker shares."""

    def __init__(self, states: Callable[[], dict[str, str]]) -> None:
        self._states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "chatbot_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", labels=["name"]
        )
        states = dict.fromkeys(_DECLARED, "closed")
        try:
            states.update(self._states())
        except Exception:  # a scrape must not fail because Redis blinked
            logger.warning("circuit states unavailable for /metrics", exc_info=True)
        for name, state in sorted(states.items()):
            family.add_metric([name], STATE_VALUES.get(state, 0))
        yield family


prometheus.register_live(_CircuitCollector(all_states))
