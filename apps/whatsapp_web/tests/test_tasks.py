from __future__ import annotations

from typing import Any

import pytest

from apps.whatsapp_web import tasks
from apps.whatsapp_web.browser import typing_ms, version_supported

pytestmark = pytest.mark.django_db


def test_one_driver_at_a_time_in_the_installation(
    command_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tasks._lease(10) is True
    assert tasks._lease(10) is True  # the same process renews it

    monkeypatch.setattr(tasks, "_owner", lambda: "other-host:1")
    assert tasks._lease(10) is False
    assert command_redis.get(tasks.LEASE_KEY) != b"other-host:1"


def test_the_task_does_nothing_while_another_process_drives(
    command_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    command_redis.set(tasks.LEASE_KEY, "other-host:1", ex=60)
    started: list[float] = []
    monkeypatch.setattr(tasks, "driver", lambda: started.append(1.0))

    tasks.web_sessions_drive(chain=False)

    assert started == []


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
