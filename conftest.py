"""Suite-wide fixtures. Services the behaviour depends on (PostgreSQL, Redis) are taken from
DATABASE_URL / REDIS_URL; their tests skip without them, except under REQUIRE_SERVICES=1 (CI),
where a missing service fails the test instead."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

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
