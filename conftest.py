"""Suite-wide fixtures. Services the behaviour depends on (PostgreSQL, Redis) are taken from
DATABASE_URL / REDIS_URL; their tests skip without them, except under REQUIRE_SERVICES=1 (CI),
where a missing service fails the test instead."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

if TYPE_CHECKING:
    from apps.accounts.models import Workspace

pytest_plugins = ["standins.fixtures", "standins.llm_fixtures"]

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(what: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (REQUIRE_SERVICES=1) but not configured")
    pytest.skip(f"needs {what}")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        _missing("REDIS_URL")
    return url


@pytest.fixture
def worker_extra_env() -> dict[str, str]:
    """More environment for tests/test_pipeline_worker.py's `worker` (imported by other modules too): a
    module that points it at other stand-ins or another broker overrides this."""
    return {}


@pytest.fixture
def worker_queues() -> str:
    """The queues tests/test_pipeline_worker.py's `worker` consumes: a module whose tasks run elsewhere
    (the beat's campaigns queue) overrides this."""
    return "inbound,llm,outbound,default"


@pytest.fixture
def rabbitmq_url() -> str:
    """A RabbitMQ broker (`RABBITMQ_URL`, e.g. amqp://guest:guest@127.0.0.1:5672//) for the broker tests."""
    url = os.environ.get("RABBITMQ_URL", "")
    if not url:
        _missing("RABBITMQ_URL")
    return url


@pytest.fixture
def postgres() -> None:
    if connection.vendor != "postgresql":
        _missing("PostgreSQL (DATABASE_URL)")


@pytest.fixture(autouse=True)
def _fast_hasher_and_clean_cache(settings: pytest.FixtureRequest) -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
    _clear_cache()
    # Login counters live in the shared rate-limit store (not the cache) and are keyed by user id,
    # which the next test may reuse.
    from apps.accounts import login_throttle

    login_throttle.clear_all()
    yield
    # The live ringer's thread (started by a test that rang on the Redis layer) must not outlive it.
    from apps.live.services import ringer_stop

    ringer_stop()


def _clear_cache() -> None:
    # The webhook's channel routes live in process memory; a test's channels are gone after it.
    from apps.whatsapp import services as whatsapp_services
    from apps.whatsapp.route_cache import _state

    _state.forget()
    # So are the heartbeats this process wrote, keyed by channel id, which SQLite reuses between tests.
    whatsapp_services._heartbeats.clear()
    # django-redis's clear() would FLUSHDB; deleting our prefix leaves other users of the server alone.
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def shared_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock of the shared state (breakers, pacing, rate limits), on Redis and on files alike:
    `advance()` lets a cool-down or a window pass without waiting for it."""
    from chatbot import shared_state

    # Near the real time, so state written without it stays consistent; whole seconds, so sums are exact.
    clock = FakeClock(float(int(time.time())))
    monkeypatch.setattr(shared_state, "clock", clock)
    return clock


@dataclass(frozen=True)
class TaskCall:
    """One publish of a task: `args`, `kwargs` and the options of `apply_async` (countdown, ...)."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def countdown(self) -> float | None:
        return self.options.get("countdown")


class TasksCaptured:
    """What the code under test handed to the broker, in order, instead of the broker.

    Every way the project publishes a task ends in `Task.apply_async` (`delay`; `delay_on_commit` and
    `transaction.on_commit(lambda: task.delay(...))` when the commit comes; the group publisher's one
    message per group), so that is where calls are recorded: under `django_capture_on_commit_callbacks`
    nothing is recorded until the block commits.
    """

    def __init__(self) -> None:
        self.calls: list[TaskCall] = []
        self._run: set[str] = set()
        self._fail: dict[str, BaseException] = {}
        self._released = False

    def of(self, *names: str) -> list[TaskCall]:
        """The calls to these tasks (every task when none is named)."""
        return [call for call in self.calls if not names or call.name in names]

    def ids(self, *names: str) -> list[Any]:
        """The first argument of each call to these tasks, in order; a list of ids (a group task's) is
        spread, so one id per message whether it went alone or in a group."""
        ids: list[Any] = []
        for call in self.of(*names):
            first = call.args[0] if call.args else None
            ids.extend(first if isinstance(first, list) else [first])
        return ids

    def run(self, *names: str) -> None:
        """Calls to these tasks also run here, at once, as a worker would run them (still recorded)."""
        self._run.update(names)

    def fail(self, name: str, error: BaseException) -> None:
        """Publishing this task raises `error`, as an unreachable broker does (nothing is recorded)."""
        self._fail[name] = error

    def release(self) -> None:
        """From now on every task goes to the real broker again (for tests that start workers)."""
        self._released = True


@pytest.fixture
def tasks_captured(monkeypatch: pytest.MonkeyPatch) -> TasksCaptured:
    """The project's Celery tasks are recorded instead of published (see TasksCaptured)."""
    from celery_app import BaseTask

    captured = TasksCaptured()
    publish = BaseTask.apply_async

    def apply_async(
        task: BaseTask,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        if captured._released:
            return publish(task, args, kwargs, **options)
        if task.name in captured._fail:
            raise captured._fail[task.name]
        call = TaskCall(task.name, tuple(args or ()), dict(kwargs or {}), options)
        captured.calls.append(call)
        if task.name in captured._run:
            task(*call.args, **call.kwargs)
        return None

    monkeypatch.setattr(BaseTask, "apply_async", apply_async)
    return captured


@pytest.fixture
def workspace() -> Workspace:
    """A fresh workspace (tenant): the one fixture every app's tests share."""
    from apps.accounts.tests.factories import WorkspaceFactory

    return WorkspaceFactory.create()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def metrics_client() -> Client:
    """A client that sends METRICS_TOKEN, as Prometheus's scrape does."""
    return Client(headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
