"""Group publishing: ids handed in while a publish is under way leave together, each caller returns only
once its ids left, and a failed publish loses nothing silently nor blocks the next callers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from chatbot.group_publish import GroupPublisher, _Entry


class GatedSend:
    """A broker whose first publish blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.fail_next = False

    def __call__(self, ids: list[int]) -> None:
        self.threads.append(threading.current_thread().name)
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker down")
        self.calls.append(list(ids))


def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for other threads to reach a state; never for time itself to pass."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0.001)


def joined(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), f"{thread.name} never returned"


def start(publisher: GroupPublisher, ids: list[int], returned: list[list[int]]) -> threading.Thread:
    def run() -> None:
        publisher.publish(ids)
        returned.append(ids)

    thread = threading.Thread(target=run, name=f"caller-{ids[0]}")
    thread.start()
    return thread


def test_a_caller_alone_publishes_its_own_ids_at_once_in_its_own_thread():
    send = GatedSend()
    send.entered.set()  # no gate
    publisher = GroupPublisher(send=send, name="test")

    publisher.publish([7, 8])
    publisher.publish([])  # nothing to publish: no message

    assert send.calls == [[7, 8]]
    assert send.threads == [threading.current_thread().name]


def test_ids_handed_in_during_a_publish_leave_together_and_each_caller_waits_for_its_own():
    send = GatedSend()
    publisher = GroupPublisher(send=send, name="test")
    returned: list[list[int]] = []
    leader = start(publisher, [1], returned)
    assert send.entered.wait(10)
    followers = [start(publisher, [n], returned) for n in (2, 3, 4)]
    until(lambda: len(publisher._pending) == 3)

    assert returned == []  # nobody is told "sent" while the broker has not taken their ids
    send.gate.set()
    joined([leader, *followers])

    assert send.calls[0] == [1]
    assert len(send.calls) == 2, "the three waiting callers should share one broker message"
    assert sorted(send.calls[1]) == [2, 3, 4]
    assert sorted(map(tuple, returned)) == [(1,), (2,), (3,), (4,)]


def test_a_group_is_capped_and_the_rest_goes_with_the_next_leader():
    send = GatedSend()
    publisher = GroupPublisher(send=send, name="test", max_group=2)
    returned: list[list[int]] = []
    leader = start(publisher, [1], returned)
    assert send.entered.wait(10)
    followers = []
    for n in (2, 3, 4):  # one at a time, so the waiting order is known
        followers.append(start(publisher, [n], returned))
        until(lambda n=n: len(publisher._pending) == n - 1)
    send.gate.set()
    joined([leader, *followers])

    assert send.calls == [[1], [2, 3], [4]]
    assert len(returned) == 4
    assert publisher._pending == []


def test_a_leader_whose_own_ids_were_cut_off_by_the_cap_goes_round_again():
    """The caller that wins the lead is not always the oldest waiting: it publishes the oldest group,
    then its own, and only then returns."""
    sent: list[list[int]] = []
    publisher = GroupPublisher(send=lambda ids: sent.append(list(ids)), name="test", max_group=1)
    older = [_Entry([1]), _Entry([2])]
    publisher._pending.extend(older)  # left by callers still waiting for the lead

    publisher.publish([3])

    assert sent == [[1], [2], [3]]
    assert all(entry.done for entry in older)


def test_a_failed_publish_is_logged_returns_to_its_callers_and_does_not_block_the_next(caplog):
    send = GatedSend()
    send.fail_next = True
    publisher = GroupPublisher(send=send, name="inbound test")
    returned: list[list[int]] = []
    leader = start(publisher, [1], returned)
    assert send.entered.wait(10)
    follower = start(publisher, [2], returned)
    until(lambda: len(publisher._pending) == 1)

    with caplog.at_level(logging.ERROR, logger="chatbot.group_publish"):
        send.gate.set()
        joined([leader, follower])

    assert sorted(map(tuple, returned)) == [(1,), (2,)]  # the failure reached nobody as an exception
    assert send.calls == [[2]]  # the next group still went
    assert "inbound test: 1 id(s) not handed to the broker" in caplog.text
    publisher.publish([3])
    assert send.calls == [[2], [3]]


@pytest.mark.parametrize("callers", [16])
def test_many_callers_at_once_all_return_and_every_id_leaves_exactly_once(callers):
    sent: list[int] = []
    lock = threading.Lock()

    def send(ids: list[int]) -> None:
        with lock:
            sent.extend(ids)

    publisher = GroupPublisher(send=send, name="test")
    returned: list[list[int]] = []
    threads = [start(publisher, [n], returned) for n in range(callers)]
    joined(threads)

    assert sorted(sent) == list(range(callers))
    assert len(returned) == callers
    assert publisher._pending == [] and not publisher._leading
