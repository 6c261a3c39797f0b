from __future__ import annotations

from typing import Any

import pytest

from apps.whatsapp_web import tasks
from apps.whatsapp_web.browser import typing_ms, version_supported

pytestmark = pytest.mark.django_db


def test_a_kick_while_this_processs_chain_runs_does_nothing_and_the_chain_goes_on(
    command_redis: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.WHATSAPP_WEB_SLICE = 0.0
    runs: list[float] = []

    class FakeDriver:
        def run(self, seconds: float) -> None:
            runs.append(seconds)

    monkeypatch.setattr(tasks, "driver", FakeDriver)
    monkeypatch.setattr(tasks._Chain, "alive_until", float("-inf"))
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.web_sessions_drive, "apply_async", lambda **options: queued.append(options))

    tasks.web_sessions_drive()  # beat's kick: no chain yet, so it drives and starts one
    [next_slice] = queued
    assert next_slice["kwargs"] == {"chain": True, "token": tasks._Chain.token}

    tasks.web_sessions_drive()  # another kick while the chain lives: nothing
    assert (len(runs), len(queued)) == (1, 1)

    tasks.web_sessions_drive(**next_slice["kwargs"])  # the chain's own next slice
    assert (len(runs), len(queued)) == (2, 2)


def test_without_redis_the_task_refuses(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, web_channel: Any
) -> None:
    settings.REDIS_URL = ""
    started: list[float] = []
    monkeypatch.setattr(tasks, "driver", lambda: started.append(1.0))

    tasks.web_sessions_drive(chain=False)

    assert started == []
    assert "WhatsApp Web needs REDIS_URL" in caplog.text


def test_typing_time_grows_with_the_text_within_bounds(settings: Any) -> None:
    settings.WHATSAPP_WEB_TYPING_MS_PER_CHAR = 40
    settings.WHATSAPP_WEB_TYPING_MIN_MS = 800
    settings.WHATSAPP_WEB_TYPING_MAX_MS = 8000

    assert typing_ms("ok") == 800
    assert 80 * 40 * 0.8 <= typing_ms("x" * 80) <= 80 * 40 * 1.2
    assert typing_ms("x" * 5000) == 8000


def test_version_pins(settings: Any) -> None:
    settings.WHATSAPP_WEB_VERSIONS = ""
    assert version_supported("2.3000.1") is True
    settings.WHATSAPP_WEB_VERSIONS = "2.3000., 2.3001."
    assert version_supported("2.3001.7") is True
    assert version_supported("2.3002.0") is False
