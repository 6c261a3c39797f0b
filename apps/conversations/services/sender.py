"""The per-number sender: one loop per WhatsApp number sends its outbound queue at the pacer's rate.

Modelled on Healthchecks' `sendalerts`: the database is the queue. A sender runs as the Celery task
`outbound.number_send` for a bounded slice, then hands over to a fresh task, so it needs no process
of its own (`make run`, docker-compose and the fault tests run it in the workers they already have)
and a killed worker's sender is redelivered by the broker (acks late) or restarted by the sweeper.

- One sender per number: a `SenderLease` row with an expiry, renewed while the sender runs; a second
  sender (another host, a duplicate wake-up) finds it live and exits. A killed sender stops renewing
  and its number is taken over once the lease expires.
- Claims: rows are paced and claimed in small groups (two pacer round trips and one
  `UPDATE ... RETURNING` per group, `pending|retry -> processing`), only once the group's first slot
  came and for at most as many rows as there are free delivery threads, so no claim is held while
  the loop sleeps and a `processing` row is one that may have reached Meta within GROUP_SPAN. A
  sender killed mid-batch leaves unclaimed rows `pending` for the next one, and its few claimed rows
  (at most its threads) `processing`, reconciled by the status webhook or settled as
  `unknown_outcome` by the sweeper, never re-sent blindly. The lease makes the claimer unique per
  number, so there is nothing for `SELECT ... FOR UPDATE SKIP LOCKED` to skip; a stray second sender
  (one that outlived its lease) loses the conditional UPDATE instead.
- The number's limit at Meta is a sliding 1 s window: besides the pacer (a little under the rate),
  each sender keeps a send window (SendWindow) so that bunched sends cannot exceed it.
- Order: only the head of each conversation is ready (no earlier row pending, retry or processing),
  so a conversation's next message waits until the previous one left the queue.
- Throughput: the loop paces and claims; up to OUTBOUND_SENDER_THREADS transport calls are in flight
  (a real Graph call takes ~0.2-1 s; 80 msg/s needs tens in flight), and one recorder thread writes
  the accepted sends' outcomes, those answered within RECORD_SPAN of each other in one statement.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import socket
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from apps.conversations.models import ConversationSettings, Message, SenderLease
from apps.conversations.services import outbound
from apps.conversations.services.outbound import S

logger = logging.getLogger(__name__)

BATCH = 200  # ready rows read per query; a fresh read at least every BATCH / rate seconds
IDLE_POLL = 0.02  # seconds between looks while the last sends of a conversation are in flight
GROUP_SPAN = 0.05  # seconds of pacing slots reserved and claimed together (a claim waits this at most)
RECORD_SPAN = 0.02  # seconds accepted sends are gathered before their outcomes are written together
RECORD_MOST = 100  # accepted sends written in one statement at most


def _lease_seconds() -> float:
    return float(settings.OUTBOUND_SENDER_LEASE)


def lease_take(channel_id: int, holder: str) -> bool:
    """Take (or renew) the number's lease; False while another sender's lease is live."""
    now = timezone.now()
    until = now + timedelta(seconds=_lease_seconds())
    mine_or_expired = Q(holder=holder) | Q(expires_at__lte=now)
    if SenderLease.objects.filter(mine_or_expired, channel_id=channel_id).update(
        holder=holder, expires_at=until
    ):
        return True
    try:
        with transaction.atomic():
            SenderLease.objects.create(channel_id=channel_id, holder=holder, expires_at=until)
    except IntegrityError:
        return False  # the row exists and another sender holds it
    return True


def lease_release(channel_id: int, holder: str) -> None:
    SenderLease.objects.filter(channel_id=channel_id, holder=holder).update(expires_at=timezone.now())


def lease_live(channel_id: int) -> bool:
    return SenderLease.objects.filter(channel_id=channel_id, expires_at__gt=timezone.now()).exists()


def ready_rows(channel_id: int, *, limit: int = BATCH) -> list[Message]:
    """The number's rows that may be sent now: due, and first of their conversation's queue."""
    # The oldest waiting row of each conversation, by one GROUP BY over the number's waiting rows:
    # linear whatever the statistics say (a NOT EXISTS per row was planned as a nested loop over
    # freshly bulk-queued rows, 1 s for 1,500 of them).
    heads = (
        Message.objects.filter(
            channel_id=channel_id,
            direction=Message.Direction.OUTBOUND,
            send_state__in=[S.PENDING, S.RETRY, S.PROCESSING],
            conversation_id__isnull=False,
        )
        .values("conversation_id")
        .annotate(first=Min("pk"))
        .values("first")
    )
    now = timezone.now()
    rows = (
        Message.objects.select_related("contact", "conversation")
        .filter(
            channel_id=channel_id, direction=Message.Direction.OUTBOUND, send_state__in=[S.PENDING, S.RETRY]
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + timedelta(seconds=0.5)))
        .filter(Q(conversation_id__isnull=True) | Q(pk__in=heads))
        .order_by("pk")[:limit]
    )
    found = list(rows)
    if found:
        # Every row is this number's: one channel object for all (per row, a joined copy cost a model
        # and two secret decryptions each).
        channel = _channels().get(pk=channel_id)
        for row in found:
            row.channel = channel
    return found


def _channels() -> QuerySet[Any]:
    return Message._meta.get_field("channel").related_model._default_manager.all()


def numbers_with_due_work(*, now: object = None) -> list[int]:
    moment = now or timezone.now()
    due = (
        Message.objects.filter(direction=Message.Direction.OUTBOUND, send_state__in=[S.PENDING, S.RETRY])
        .exclude(next_attempt_at__gt=moment)
        .values_list("channel_id", flat=True)
        .distinct()
    )
    return sorted(set(due))


def next_retry_in(channel_id: int) -> float | None:
    """Seconds until the number's earliest waiting retry, None when there is none."""
    earliest = Message.objects.filter(channel_id=channel_id, send_state=S.RETRY).aggregate(
        at=Min("next_attempt_at")
    )
    at: datetime | None = earliest["at"]
    if at is None:
        return None
    return max((at - timezone.now()).total_seconds(), 0.0)


class SendWindow:
    """At most `limit` sends of this sender reach Meta in any `period` (1 s), however the threads
    bunch them.

    A send takes a token when it starts and gives it back a period after its answer came, or a period
    plus `slack` after it started when the answer is slower: the request arrived before its answer,
    so the `limit + 1`-th send cannot arrive within a period of one answered within `slack`. Tokens are returned in
    the order they were taken (a later one answered earlier waits behind the oldest): never fewer
    tokens out than sends in the window, sometimes more, which only errs on the slow side.

    Two more rules, each added after a 130429 in the 80 msg/s benchmark on an idle machine:
    - the first `cold` sends (default `limit`) return their token only once answered: a fresh
      sender's first calls open connections while on their way, and reached Meta up to ~60 ms after
      they started, so "arrived within `slack` of its start" does not hold for them;
    - starts are at least `period / limit` apart: sends that fell behind (a GIL stall, the cold
      start) would otherwise start in a bunch, and the last of a bunch reaches Meta well after its
      recorded start.
    """

    def __init__(
        self,
        limit: int,
        *,
        slack: float,
        period: float = 1.0,
        cold: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = max(limit, 1)
        self.slack = max(slack, 0.0)
        self.period = period
        self._clock = clock
        self._until: deque[list[float]] = deque()  # per token taken: [moment it returns]
        self._cold = self.limit if cold is None else cold  # sends whose token waits for their answer
        self._spacing = period / self.limit
        self._next_start = -math.inf
        self._changed = threading.Condition()

    @contextmanager
    def send(self) -> Iterator[None]:
        token = self._take()
        try:
            yield
        finally:
            with self._changed:
                token[0] = min(token[0], self._clock() + self.period)
                self._changed.notify_all()

    def _take(self) -> list[float]:
        with self._changed:
            while True:
                now = self._clock()
                while self._until and self._until[0][0] <= now:
                    self._until.popleft()
                if now < self._next_start:
                    self._changed.wait(self._next_start - now)
                    continue
                if len(self._until) < self.limit:
                    token = [now + self.period + self.slack if self._cold <= 0 else math.inf]
                    self._cold -= 1
                    self._next_start = now + self._spacing
                    self._until.append(token)
                    return token
                head = self._until[0][0]
                self._changed.wait(None if head == math.inf else head - now)


class _Recorder:
    """Writes accepted sends from its own thread, many per statement (`outbound.sent_record_many`).

    Per send, the outcome's UPDATE and the live event's INSERT were ~30% of the sender's GIL time at
    1,000 msg/s; gathered over RECORD_SPAN they cost one round trip each per group. A row stays
    `processing` until its group is written, so its conversation's next message waits that much
    longer; a sender killed before the write leaves it `processing`, settled like any unanswered send
    (the sweeper's `unknown_outcome`), never re-sent.
    """

    def __init__(
        self,
        write: Callable[[list[tuple[Message, str]]], None],
        *,
        span: float,
        most: int,
    ) -> None:
        self._write = write
        self.span = span
        self.most = most
        self._items: queue.SimpleQueue[tuple[Message, str] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="sender-recorder", daemon=True)
        self._thread.start()

    def add(self, message: Message, wamid: str) -> None:
        with self._lock:
            self._pending += 1
        self._items.put((message, wamid))

    def pending(self) -> int:
        """Sends answered and not yet written (their rows still read `processing`)."""
        with self._lock:
            return self._pending

    def _run(self) -> None:
        try:
            closing = False
            while not closing:
                first = self._items.get()
                if first is None:
                    break
                group = [first]
                until = time.monotonic() + self.span
                while len(group) < self.most:
                    try:
                        item = self._items.get(timeout=max(until - time.monotonic(), 0.0))
                    except queue.Empty:
                        break
                    if item is None:
                        closing = True
                        break
                    group.append(item)
                self._flush(group)
        finally:
            connections.close_all()

    def _flush(self, group: list[tuple[Message, str]]) -> None:
        try:
            self._write(group)
        except Exception:
            # One bad row must not leave the others `processing`: write them one by one.
            logger.exception("recording %s sends together failed; recording them one by one", len(group))
            for item in group:
                try:
                    self._write([item])
                except Exception:
                    # Left `processing`: its status webhook or the sweeper settles it, never re-sent.
                    logger.exception("recording the send of message %s failed", item[0].pk)
        finally:
            with self._lock:
                self._pending -= len(group)

    def close(self) -> None:
        """Write what is left, then stop."""
        self._items.put(None)
        self._thread.join()


class _Deliveries:
    """Transport calls in flight: inline with one thread (SQLite serialises writes anyway), else a
    fixed set of threads, each with its own database connection, closed when the slice ends, and a
    recorder writing their accepted sends in groups."""

    def __init__(self, threads: int, window: SendWindow) -> None:
        self.threads = max(threads, 1)
        self.window = window
        self.free = threading.Semaphore(self.threads)
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._jobs: queue.SimpleQueue[tuple[Message, float] | None] = queue.SimpleQueue()
        self._workers = [
            threading.Thread(target=self._work, name=f"sender-{n}", daemon=True)
            for n in range(self.threads if self.threads > 1 else 0)
        ]
        self._recorder = (
            _Recorder(outbound.sent_record_many, span=RECORD_SPAN, most=RECORD_MOST)
            if self._workers
            else None
        )
        for worker in self._workers:
            worker.start()

    def reserve(self, most: int = 1) -> int:
        """Wait for a free delivery, then take up to `most` (a claim never waits for a thread)."""
        self.free.acquire()
        taken = 1
        while taken < most and self.free.acquire(blocking=False):
            taken += 1
        with self._lock:
            self._in_flight += taken
        return taken

    def unreserve(self, count: int = 1) -> None:
        if count <= 0:
            return
        with self._lock:
            self._in_flight -= count
        self.free.release(count)

    def in_flight(self) -> int:
        """Sends not finished: in a transport call, or answered and not yet recorded."""
        recording = self._recorder.pending() if self._recorder else 0
        with self._lock:
            return self._in_flight + recording

    def submit(self, message: Message, due: float = 0.0) -> None:
        """Deliver a claimed row at `due` (time.monotonic()), within GROUP_SPAN of its claim."""
        if self._workers:
            self._jobs.put((message, due))
        else:
            self._deliver(message, due)

    def _deliver(self, message: Message, due: float) -> None:
        try:
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            record = self._recorder.add if self._recorder else None
            result = outbound.message_deliver(message, gate=self.window.send(), record=record).result
        except Exception:
            # The row stays `processing`: reconciled by its status webhook or settled by the sweeper.
            logger.exception("delivery of message %s failed", message.pk)
            result = "error"
        finally:
            self.unreserve()
        with self._lock:
            self.outcomes[result] += 1

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                self._deliver(*job)
        finally:
            connections.close_all()

    def close(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)
        for worker in self._workers:
            worker.join()
        if self._recorder:
            self._recorder.close()


@dataclass
class SenderReport:
    result: str  # busy (another sender has the number), idle, slice (time is up), lost_lease
    outcomes: dict[str, int] = field(default_factory=dict)
    retry_in: float | None = None  # when idle: seconds until the earliest waiting retry


def _window_for(channel_id: int) -> SendWindow:
    """The number's send window: `send_rate` sends per second, OUTBOUND_WINDOW_SLACK of slack."""
    rate = _channels().filter(pk=channel_id).values_list("send_rate", flat=True).first() or 1
    return SendWindow(math.floor(rate), slack=float(settings.OUTBOUND_WINDOW_SLACK))


_switching = {"senders": 0, "saved": 0.005}
_switching_lock = threading.Lock()


def _fast_switching(on: bool) -> None:
    """A 1 ms GIL switch interval while any sender of this process runs.

    A delivery thread due to start waits for the GIL up to the interval per hand-over (5 ms by
    default): starts late by several of them reach Meta bunched, past the send window's slack.
    """
    with _switching_lock:
        if on:
            if _switching["senders"] == 0:
                _switching["saved"] = sys.getswitchinterval()
                sys.setswitchinterval(min(_switching["saved"], 0.001))
            _switching["senders"] += 1
        else:
            _switching["senders"] -= 1
            if _switching["senders"] == 0:
                sys.setswitchinterval(_switching["saved"])


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def sender_run(
    *,
    channel_id: int,
    slice_seconds: float,
    threads: int,
    holder: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SenderReport:
    """Send the number's ready rows for up to `slice_seconds`; exits at once if another sender runs."""
    holder = holder or holder_name()
    if not lease_take(channel_id, holder):
        return SenderReport("busy")
    renew_every = _lease_seconds() / 3
    renewed = clock()
    deadline = renewed + slice_seconds
    max_wait = float(settings.OUTBOUND_MAX_INLINE_WAIT)
    workspace_settings: dict[int, ConversationSettings] = {}

    def settings_for(workspace_id: int) -> ConversationSettings:
        if workspace_id not in workspace_settings:
            workspace_settings[workspace_id] = outbound.conversation_settings(workspace_id)
        return workspace_settings[workspace_id]

    deliveries = _Deliveries(threads, _window_for(channel_id))
    result = "slice"
    _fast_switching(True)
    try:
        while clock() < deadline:
            if clock() - renewed >= renew_every:
                if not lease_take(channel_id, holder):
                    result = "lost_lease"
                    break
                renewed = clock()
            rows = ready_rows(channel_id)
            if not rows:
                if deliveries.in_flight():
                    sleep(IDLE_POLL)  # their conversations' next rows become ready when they finish
                    continue
                # Release, then look once more: a row committed before a waker saw the lease live
                # is seen here; one committed later finds the lease gone and wakes a new sender.
                lease_release(channel_id, holder)
                if ready_rows(channel_id, limit=1) and lease_take(channel_id, holder):
                    renewed = clock()
                    continue
                result = "idle"
                break
            paced = False
            group_most = max(1, int(float(rows[0].channel.send_rate) * GROUP_SPAN))
            position = 0
            while position < len(rows):
                if clock() >= deadline or clock() - renewed >= renew_every:
                    break
                free = deliveries.reserve(group_most)
                group = rows[position : position + free]
                position += len(group)
                # Rows left without a slot (their customer's or the number's is further away) wait
                # for a later pass.
                slots = outbound.pace_many(group, max_wait, settings_for)
                paced_at = clock()
                deliveries.unreserve(free - len(slots))
                if not slots:
                    continue
                paced = True
                if (first := min(wait for _, wait in slots)) > 0:
                    sleep(first)  # holding no claim
                claimed = {m.pk for m in outbound.message_claim_many([m for m, _ in slots])}
                for message, wait in slots:
                    if message.pk in claimed:
                        deliveries.submit(message, time.monotonic() + (paced_at + wait - clock()))
                    else:
                        deliveries.unreserve()  # cancelled (or taken) since it was read
            if not paced:
                sleep(min(max_wait, 0.25))
    finally:
        _fast_switching(False)
        deliveries.close()
        if result != "idle":
            lease_release(channel_id, holder)
    report = SenderReport(result, dict(deliveries.outcomes))
    if result == "idle":
        report.retry_in = next_retry_in(channel_id)
    return report
