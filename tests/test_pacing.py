"""Pacing shared by all workers: the embedded file pacer and the Redis pacer behave the same."""

from __future__ import annotations

import threading
import uuid

import pytest

from chatbot.pacing import FilePacer, RedisPacer, _gcra


def test_gcra_spaces_reservations_by_the_interval_after_the_burst():
    tat, waits = 0.0, []
    for _ in range(5):
        wait, tat = _gcra(tat, 100.0, 0.5, 2, max_wait=10)
        waits.append(wait)

    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_gcra_refuses_a_slot_beyond_max_wait_and_takes_nothing():
    wait, new_tat = _gcra(110.0, 100.0, 1.0, 1, max_wait=5)

    assert (wait, new_tat) == (10.0, None)


@pytest.fixture(params=["file", "redis"])
def any_pacer(request, tmp_path, shared_clock):
    if request.param == "file":
        return FilePacer(tmp_path / "pacing")
    request.getfixturevalue("redis_url")
    from django_redis import get_redis_connection

    return RedisPacer(get_redis_connection("default"))


def test_reservations_from_many_threads_never_share_a_slot(any_pacer):
    key = f"test:{uuid.uuid4()}"
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            reservation = any_pacer.reserve(key, rate=2.0, burst=1, max_wait=60)
            with lock:
                waits.append(reservation.wait)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The shared clock stands still, so slot i is exactly i intervals away: two reservations sharing
    # a slot (a lost update) would repeat a wait and leave the last slot short.
    assert sorted(waits) == [0.5 * i for i in range(40)]


def test_hold_keeps_the_next_slot_a_while_away_and_holds_do_not_add_up(any_pacer, shared_clock):
    key = f"test:{uuid.uuid4()}"
    any_pacer.reserve(key, rate=100.0, burst=1, max_wait=1)

    any_pacer.hold(key, seconds=1.0)
    any_pacer.hold(key, seconds=1.0)  # a second refusal of the same bunch
    held = any_pacer.reserve(key, rate=100.0, burst=1, max_wait=5)

    assert held.reserved is True
    assert held.wait == pytest.approx(1.0, abs=1e-3)  # not 2 s, and not 1 s after the next slot


def test_slow_down_pushes_the_next_slot_back(any_pacer, shared_clock):
    key = f"test:{uuid.uuid4()}"
    any_pacer.reserve(key, rate=100.0, burst=1, max_wait=1)

    any_pacer.slow_down(key, seconds=3.0)
    refused = any_pacer.reserve(key, rate=100.0, burst=1, max_wait=1)
    shared_clock.advance(3)
    granted = any_pacer.reserve(key, rate=100.0, burst=1, max_wait=1)

    assert refused.reserved is False
    assert refused.wait == pytest.approx(3.01, abs=1e-3)  # the slot after the first, pushed back 3 s
    assert (granted.reserved, granted.wait) == (True, pytest.approx(0.01, abs=1e-3))


def test_file_pacer_is_shared_between_processes(tmp_path):
    """Two processes taking slots from one bucket get distinct slots (embedded mode, no Redis)."""
    import subprocess
    import sys

    code = (
        "import sys, time; from pathlib import Path; from chatbot.pacing import FilePacer; "
        "p = FilePacer(Path(sys.argv[1])); "
        "print(' '.join(repr(time.time() + p.reserve('k', rate=10.0, burst=1, max_wait=10).wait) for _ in range(5)))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=30)[0] for proc in procs]

    slots = sorted(float(w) for out in outputs for w in out.split())
    assert len(slots) == 10
    gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
    # 10 per second: every slot is its own, across both processes. A shared slot (a lost update) gives a
    # gap near 0; half an interval leaves room for the time between reserve() and time.time() on a busy machine.
    assert min(gaps) > 0.05
    assert slots[-1] - slots[0] > 9 * 0.1 - 0.05


def test_reserve_many_takes_consecutive_slots_in_one_step_and_stops_at_max_wait(any_pacer):
    key = f"test:{uuid.uuid4()}"

    waits = any_pacer.reserve_many(key, rate=10.0, burst=1, max_wait=0.35, count=10)
    after = any_pacer.reserve(key, rate=10.0, burst=1, max_wait=10)

    # Slots 0, 0.1, 0.2, 0.3 s fit in max_wait; the fifth (0.4 s) is left, and so are the rest.
    assert len(waits) == 4
    assert waits[0] == pytest.approx(0.0, abs=0.02)
    assert [round(b - a, 3) for a, b in zip(waits, waits[1:], strict=False)] == [0.1, 0.1, 0.1]
    assert after.wait == pytest.approx(0.4, abs=0.05)  # the next caller gets the slot after the last taken


def test_reserve_many_beyond_max_wait_takes_nothing(any_pacer):
    key = f"test:{uuid.uuid4()}"
    any_pacer.slow_down(key, seconds=5.0)

    assert any_pacer.reserve_many(key, rate=10.0, burst=1, max_wait=1.0, count=3) == []
    assert any_pacer.reserve(key, rate=10.0, burst=1, max_wait=10).wait == pytest.approx(5.0, abs=0.1)


def test_reserve_each_takes_one_slot_per_key_and_leaves_a_busy_key_untouched(any_pacer):
    free, busy = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    any_pacer.slow_down(busy, seconds=5.0)

    free_slot, busy_slot, free_again = any_pacer.reserve_each(
        [(free, 1.0, 1), (busy, 1.0, 1), (free, 1.0, 1)], max_wait=2.0
    )

    assert (free_slot.reserved, free_slot.wait) == (True, pytest.approx(0.0, abs=0.02))
    assert (busy_slot.reserved, busy_slot.wait) == (False, pytest.approx(5.0, abs=0.1))
    assert (free_again.reserved, free_again.wait) == (
        True,
        pytest.approx(1.0, abs=0.1),
    )  # same key, next slot
    assert any_pacer.reserve(busy, rate=1.0, burst=1, max_wait=10).wait == pytest.approx(5.0, abs=0.1)
