"""The shared-state module on both backends: Redis scripts and locked JSON files, one clock."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from chatbot import shared_state
from chatbot.shared_state import JsonFiles, Script

_INCREMENT_LUA = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
redis.call('SET', KEYS[1], value, 'EX', 60)
return value
"""


@pytest.fixture(params=["file", "redis"])
def increment(request, tmp_path) -> Callable[[str], int]:
    """Add one to a shared counter and return the new value: a read, a change and a write."""
    if request.param == "file":
        files = JsonFiles(tmp_path)

        def on_file(key: str) -> int:
            result: int = files.update(key, lambda value: ((value or 0) + 1, (value or 0) + 1))
            return result

        return on_file
    request.getfixturevalue("redis_url")
    from django_redis import get_redis_connection

    script = Script(get_redis_connection("default"), _INCREMENT_LUA)
    return lambda key: int(script(keys=[f"test:{key}"], args=[]))


def test_read_change_write_loses_no_update_under_concurrent_callers(increment):
    key = uuid.uuid4().hex
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            value = increment(key)
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(seen) == list(range(1, 201))  # every caller saw a value of its own


def test_a_redis_script_reads_redis_time_unless_a_clock_is_set(redis_url, monkeypatch):
    from django_redis import get_redis_connection

    script = Script(get_redis_connection("default"), "return {tostring(now), ARGV[2]}")

    before = time.time()
    own, argument = script(keys=[], args=["first argument"])
    monkeypatch.setattr(shared_state, "clock", lambda: 1234.5)
    fake, _ = script(keys=[], args=["x"])

    assert before - 1 <= float(own) <= time.time() + 1  # Redis's clock, on this machine
    assert argument == b"first argument"  # the caller's arguments start at ARGV[2]
    assert float(fake) == 1234.5


def test_the_file_clock_is_the_real_one_unless_a_clock_is_set(shared_clock):
    assert shared_state.now() == shared_clock.now
    shared_clock.advance(90)
    assert shared_state.now() == shared_clock.now


def test_the_file_clock_defaults_to_the_wall_clock():
    assert abs(shared_state.now() - time.time()) < 5


def test_a_torn_file_reads_as_missing_and_the_next_change_starts_afresh(tmp_path):
    files = JsonFiles(tmp_path)
    files.path("k").write_bytes(b'{"count": 4')  # a crash mid-write

    before = files.read("k")
    result = files.update("k", lambda document: (document, {"count": 1}))

    assert (before, result, files.read("k")) == (None, None, {"count": 1})


def test_an_unchanged_document_is_not_rewritten(tmp_path):
    files = JsonFiles(tmp_path)
    files.update("k", lambda _: (None, {"a": 1}))
    files.path("k").write_bytes(b'{"a":   1}')  # same document, other bytes

    files.update("k", lambda document: (None, document))

    assert files.path("k").read_bytes() == b'{"a":   1}'


def test_file_names_and_listing(tmp_path):
    hashed, plain = JsonFiles(tmp_path / "h", suffix=".json"), JsonFiles(tmp_path / "p", hashed=False)
    for key in ("b", "a"):
        hashed.update(key, lambda _, key=key: (None, {"name": key}))
    plain.update("metric_total", lambda _: (None, {"x": 1.0}))
    (tmp_path / "h" / ("0" * 40 + ".json")).write_bytes(b"{torn")

    listed = list(hashed.documents())
    hashed.clear()

    assert len(hashed.path("a").stem) == 40 and hashed.path("a").suffix == ".json"
    assert sorted(d["name"] for d in listed) == ["a", "b"]  # the torn one is skipped
    assert (tmp_path / "p" / "metric_total").exists()
    assert list((tmp_path / "h").iterdir()) == []
    assert hashed.read("a") is None


def _on_redis(client: object) -> tuple[str, object]:
    return ("redis", client)


def _on_files(folder: Path) -> tuple[str, object]:
    return ("files", folder)


def test_select_builds_the_file_store_under_data_dir_without_redis(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path

    first = shared_state.select("area/sub", redis=_on_redis, files=_on_files)
    again = shared_state.select("area/sub", redis=_on_redis, files=_on_files)
    settings.DATA_DIR = tmp_path / "other"
    moved = shared_state.select("area/sub", redis=_on_redis, files=_on_files)

    assert first == ("files", tmp_path / "area" / "sub")
    assert again is first  # built once per (REDIS_URL, folder)
    assert moved == ("files", tmp_path / "other" / "area" / "sub")


def test_select_builds_the_redis_store_when_redis_is_configured(settings, redis_url, tmp_path):
    settings.REDIS_URL = redis_url
    settings.DATA_DIR = tmp_path

    kind, client = shared_state.select("area", redis=_on_redis, files=_on_files)

    assert kind == "redis"
    assert client.ping() is True
