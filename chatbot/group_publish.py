"""Group publishing: the ids that request threads of one process hand in while a publish is under way go
to the broker together, as one task message, instead of one message each.

Like a database's group commit, with no thread of its own: the first caller becomes the leader and
publishes what is waiting (its own ids included) while later callers wait; when it is done, one of them
leads the next group. Every caller returns only once its ids were handed to the broker (or the attempt
failed and was logged), so the guarantees stay those of a direct `.delay()`: a 200 answered to Meta
means the task was published or the failure was logged for the sweeper to recover. Alone, a caller
publishes its own ids at once; groups form only when callers arrive faster than one publish takes,
which is exactly when one message per id would cost the most (kombu builds a Redis client and a message
envelope per publish, ~25% of a webhook request's CPU before this).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    ids: Sequence[int]
    done: bool = False


@dataclass
class GroupPublisher:
    """`send` publishes a group's ids (one broker message); it runs in the leader's thread.

    `max_group` bounds one message's size; what is left waits for the next leader.
    """

    send: Callable[[list[int]], None]
    name: str
    max_group: int = 500
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _pending: list[_Entry] = field(default_factory=list, repr=False)
    _leading: bool = field(default=False, repr=False)

    def publish(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        entry = _Entry(ids)
        with self._cond:
            self._pending.append(entry)
        while True:
            with self._cond:
                while self._leading and not entry.done:
                    self._cond.wait()
                if entry.done:
                    return
                # Lead: the oldest waiting group, which holds this caller's ids unless max_group cut
                # them off; then this caller goes round again.
                self._leading = True
                group = self._take()
            try:
                self._send(group)
            finally:
                with self._cond:
                    for member in group:
                        member.done = True
                    self._leading = False
                    self._cond.notify_all()

    def _take(self) -> list[_Entry]:
        """The oldest waiting entries up to max_group ids (always at least one entry)."""
        taken: list[_Entry] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0].ids) <= self.max_group):
            entry = self._pending.pop(0)
            taken.append(entry)
            size += len(entry.ids)
        return taken

    def _send(self, group: list[_Entry]) -> None:
        ids = [item for entry in group for item in entry.ids]
        try:
            self.send(ids)
        except Exception:  # noqa: BLE001 - the rows are committed; the sweeper enqueues what never left
            logger.exception("%s: %d id(s) not handed to the broker; the sweeper will", self.name, len(ids))
