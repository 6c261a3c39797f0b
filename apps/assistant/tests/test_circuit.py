"""Circuit breakers shared by every worker: the embedded file store and Redis behave the same."""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import pytest
from prometheus_client import REGISTRY, generate_latest

from chatbot.circuit import FileStore, all_states, breaker

COOLDOWN = 30.0  # time passes on the shared clock: nothing waits for it


@pytest.fixture(params=["file", "redis"])
def store(request, settings, tmp_path, shared_clock):
    settings.DATA_DIR = tmp_path
    if request.param == "file":
        settings.REDIS_URL = ""
        yield "file"
        return
    settings.REDIS_URL = request.getfixturevalue("redis_url")
    yield "redis"
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    for name in client.smembers("circuit:names"):
        if name.decode().startswith("test:"):
            client.delete(f"circuit:{name.decode()}")
            client.srem("circuit:names", name)


@pytest.fixture
def name():
    return f"test:{uuid.uuid4().hex[:12]}"


def test_opens_after_n_consecutive_failures_and_refuses_calls(store, name):
    guard = breaker(name, failures=3, cooldown=COOLDOWN)

    states = []
    for _ in range(3):
        assert guard.allow() is True
        guard.failure()
        states.append(guard.state())

    assert states == ["closed", "closed", "open"]
    assert guard.allow() is False


def test_a_success_resets_the_count_of_consecutive_failures(store, name):
    guard = breaker(name, failures=3, cooldown=COOLDOWN)

    guard.failure()
    guard.failure()
    guard.success()
    guard.failure()
    guard.failure()

    assert guard.state() == "closed"
    assert guard.allow() is True


def test_after_the_cooldown_exactly_one_concurrent_caller_gets_the_trial(store, name, shared_clock):
    guard = breaker(name, failures=1, cooldown=COOLDOWN)
    guard.failure()
    shared_clock.advance(COOLDOWN)
    answers = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def ask():
        barrier.wait()
        allowed = breaker(name, failures=1, cooldown=COOLDOWN).allow()
        with lock:
            answers.append(allowed)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [False] * 7 + [True]
    assert guard.state() == "half_open"
    assert guard.allow() is False  # still refused while the trial is out


def test_the_cooldown_is_exact_on_the_shared_clock(store, name, shared_clock):
    guard = breaker(name, failures=1, cooldown=COOLDOWN)
    guard.failure()

    shared_clock.advance(COOLDOWN - 1)
    early = guard.allow()
    shared_clock.advance(1)

    assert (early, guard.allow()) == (False, True)


def test_a_successful_trial_closes_the_breaker(store, name, shared_clock):
    guard = breaker(name, failures=1, cooldown=COOLDOWN)
    guard.failure()
    shared_clock.advance(COOLDOWN)

    assert guard.allow() is True
    guard.success()

    assert guard.state() == "closed"
    assert [guard.allow() for _ in range(3)] == [True, True, True]


def test_a_failed_trial_reopens_for_another_cooldown(store, name, shared_clock):
    guard = breaker(name, failures=1, cooldown=COOLDOWN)
    guard.failure()
    shared_clock.advance(COOLDOWN)

    assert guard.allow() is True
    guard.failure()

    assert guard.state() == "open"
    shared_clock.advance(COOLDOWN - 1)
    assert guard.allow() is False
    shared_clock.advance(1)
    assert guard.allow() is True


def test_a_trial_whose_caller_vanished_is_granted_again_after_a_cooldown(store, name, shared_clock):
    guard = breaker(name, failures=1, cooldown=COOLDOWN)
    guard.failure()
    shared_clock.advance(COOLDOWN)
    assert guard.allow() is True  # this caller never reports back

    shared_clock.advance(COOLDOWN - 1)
    assert guard.allow() is False
    shared_clock.advance(1)
    assert guard.allow() is True


def test_two_breaker_objects_of_the_same_name_share_the_state(store, name):
    first = breaker(name, failures=2, cooldown=COOLDOWN)
    second = breaker(name, failures=2, cooldown=COOLDOWN)

    first.failure()
    second.failure()

    assert first.state() == second.state() == "open"
    assert second.allow() is False
    assert breaker(f"{name}-other").state() == "closed"


def test_all_states_and_the_prometheus_gauge_show_every_breaker(store, name):
    breaker(f"{name}-a", failures=1).failure()
    tripped = breaker(f"{name}-b", failures=5)
    tripped.failure()

    states = all_states()
    metrics = generate_latest(REGISTRY).decode()

    assert states[f"{name}-a"] == "open"
    assert states[f"{name}-b"] == "closed"
    assert f'chatbot_circuit_state{{name="{name}-a"}} 2.0' in metrics
    assert f'chatbot_circuit_state{{name="{name}-b"}} 0.0' in metrics


def _fail_twice(folder: str, name: str) -> None:
    store = FileStore(__import__("pathlib").Path(folder))
    for _ in range(2):
        store.apply(name, "failure", 2, 30.0)


def test_the_file_store_is_shared_between_processes(tmp_path, name):
    process = multiprocessing.get_context("fork").Process(target=_fail_twice, args=(str(tmp_path), name))
    process.start()
    process.join(10)

    state, allowed = FileStore(tmp_path).apply(name, "allow", 2, 30.0)

    assert process.exitcode == 0
    assert (state, allowed) == ("open", False)


def test_without_its_state_a_breaker_lets_calls_through_and_never_raises(monkeypatch, name, caplog):
    """Redis restarting must not fail the call the breaker protects (nor leave a send half done)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from chatbot import circuit

    class Down:
        def apply(self, *args):
            raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(circuit, "_store", lambda: Down())
    b = breaker(name, failures=1, cooldown=COOLDOWN)

    assert b.allow() is True
    b.failure()
    b.success()
    assert (b.allow(), b.state()) == (True, "closed")
    assert "state unavailable, treated as closed" in caplog.text


def test_a_call_let_through_a_clean_breaker_reports_success_without_a_round_trip(store, name, monkeypatch):
    from chatbot import circuit

    ops: list[str] = []
    real = circuit._store

    def counting():
        inner = real()

        class Counting:
            def apply(self, name, op, failures, cooldown):
                ops.append(op)
                return inner.apply(name, op, failures, cooldown)

        return Counting()

    monkeypatch.setattr(circuit, "_store", counting)
    clean = breaker(name, failures=2, cooldown=COOLDOWN)
    assert clean.allow()
    clean.success()
    assert ops == ["allow"]  # closed with no failure counted: nothing to reset

    breaker(name, failures=2, cooldown=COOLDOWN).failure()
    ops.clear()
    after_failure = breaker(name, failures=2, cooldown=COOLDOWN)
    assert after_failure.allow()
    after_failure.success()  # one failure counted: this success resets it
    breaker(name, failures=2, cooldown=COOLDOWN).failure()

    assert ops == ["allow", "success", "failure"]
    # Consecutive failures only: the success in between reset the count, so one more failure
    # leaves the breaker closed.
    assert breaker(name, failures=2, cooldown=COOLDOWN).state() == "closed"
