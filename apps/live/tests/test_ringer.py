"""The live ringer: one thread per process rings workspaces' sockets, coalescing bursts (issue 11, (d))."""

from __future__ import annotations

import os
import threading
import time

import pytest

from apps.live import services


class RecordingLayer:
    """A channel layer that notes every group_send: (group, monotonic time, thread name)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, float, str]] = []

    async def group_send(self, group: str, message: dict) -> None:
        assert message == services.WAKEUP
        self.sent.append((group, time.monotonic(), threading.current_thread().name))


@pytest.fixture
def layer(monkeypatch) -> RecordingLayer:
    recording = RecordingLayer()
    monkeypatch.setattr(services, "get_channel_layer", lambda: recording)
    return recording


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_burst_of_rings_is_coalesced_and_the_last_event_is_still_rung(layer, monkeypatch):
    monkeypatch.setattr(services, "RING_SPACING", 0.2)
    # Given 200 events of workspace 1 and 3 of workspace 2 committed within ~0.1 s
    for n in range(200):
        services._ring(1)
        if n % 80 == 0:
            services._ring(2)
        time.sleep(0.0005)
    last_ring = time.monotonic()

    # Then each workspace's group heard a ring after its last event, with far fewer sends than events
    wait_for(lambda: any(g == "ws-1" and at >= last_ring for g, at, _ in layer.sent))
    wait_for(lambda: sum(g == "ws-2" for g, _, _ in layer.sent) >= 2)
    ones = [at for group, at, _ in layer.sent if group == "ws-1"]
    assert 2 <= len(ones) <= 3  # the leading ring, then at most one per 0.2 s
    assert all(b - a >= 0.19 for a, b in zip(ones, ones[1:], strict=False))
    # ...sent from the ringer's own thread, not the caller's
    assert {name for _, _, name in layer.sent} == {"live-ringer"}


def test_a_lone_ring_goes_out_at_once(layer):
    before = time.monotonic()
    services._ring(5)

    wait_for(lambda: layer.sent)
    assert layer.sent[0][0] == "ws-5"
    assert layer.sent[0][1] - before < 0.5  # not held back for the spacing


def test_one_thread_per_process_reused_across_rings(layer):
    services._ring(1)
    first = services.ringer()
    services._ring(2)
    wait_for(lambda: len(layer.sent) == 2)

    assert services.ringer() is first
    assert [t.name for t in threading.enumerate()].count("live-ringer") == 1


def test_a_dead_ringer_thread_is_replaced_by_the_next_ring(layer):
    services._ring(1)
    wait_for(lambda: len(layer.sent) == 1)
    dead = services.ringer()
    dead.loop.call_soon_threadsafe(dead.loop.stop)  # the thread ends as if it had crashed
    dead.thread.join(5)

    services._ring(1)

    wait_for(lambda: len(layer.sent) == 2)
    assert services.ringer() is not dead


def test_stop_sends_what_is_due_and_leaves_no_thread(layer, monkeypatch):
    monkeypatch.setattr(services, "RING_SPACING", 30.0)
    services._ring(3)
    wait_for(lambda: len(layer.sent) == 1)
    services._ring(3)  # due in 30 s

    services.ringer_stop()

    assert [g for g, _, _ in layer.sent] == ["ws-3", "ws-3"]
    assert "live-ringer" not in [t.name for t in threading.enumerate()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_ringer(layer):
    # Given a parent whose ringer runs (Celery prefork and gunicorn fork after start-up)
    services._ring(1)
    wait_for(lambda: len(layer.sent) == 1)
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: ring, and report what its layer heard
        try:
            services._ring(7)
            deadline = time.monotonic() + 5
            while len(layer.sent) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            os.write(write, f"{layer.sent[-1][0]} {services.ringer().pid == os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)

    # Then the child's ring went out from a thread of its own
    assert status == 0
    assert answer == "ws-7 True"
    assert len(layer.sent) == 1  # nothing rung in the parent by the child
