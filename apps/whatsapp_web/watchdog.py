"""A deadline for every call the driver makes into a page.

Playwright's `evaluate` and `BrowserContext.close` wait as long as the page takes, and a page whose main
thread spins (a runaway script, a WhatsApp Web bug) never answers: worker-web's only thread would wait
forever, with every other channel of the process. A call made under `deadline()` that overruns has its
channel's Chromium killed (the browser's whole process group, renderers included); Playwright then
fails the call ("target closed"), and the driver restarts that channel with backoff like any lost page.

Found by the hung-page browser test: under load the page could hang in the middle of the catch-up's
`evaluate`, right after connecting, and the driver then waited on it for good.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TICK = 0.25  # seconds between two looks at the deadlines
PROC = Path("/proc")


def browser_pids(profile: Path) -> list[int]:
    """The Chromium browser processes (not their renderers: those carry a `--type=`) started on this
    profile folder, read from /proc (worker-web runs on Linux)."""
    flag = f"--user-data-dir={profile}".encode()
    found = []
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        if flag in args and not any(arg.startswith(b"--type=") for arg in args):
            found.append(int(entry.name))
    return found


def browser_kill(profile: Path) -> int:
    """Kill the browser on this profile with its process group; how many browsers were killed."""
    killed = 0
    for pid in browser_pids(profile):
        try:
            # Playwright starts Chromium as a process group leader: the group holds its renderers.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            continue
    return killed


@dataclass
class _Due:
    at: float
    profile: Path
    what: str
    seconds: float


class Watchdog:
    """One per driver: a daemon thread that kills the browser of a call overrunning its deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[int, _Due] = {}
        self._next = 0
        self._thread: threading.Thread | None = None
        self.kills = 0  # how many calls overran (read by tests and logs)

    @contextmanager
    def deadline(self, profile: Path, seconds: float, what: str) -> Iterator[None]:
        with self._lock:
            self._next += 1
            token = self._next
            self._due[token] = _Due(time.monotonic() + seconds, profile, what, seconds)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="whatsapp-web-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._due.pop(token, None)

    def _watch(self) -> None:
        while True:
            time.sleep(TICK)
            self.check(time.monotonic())

    def check(self, now: float) -> list[str]:
        """Kill the browsers of the calls due by `now`; what they were doing."""
        with self._lock:
            overdue = [(token, due) for token, due in self._due.items() if due.at <= now]
            for token, _ in overdue:
                del self._due[token]
        for _, due in overdue:
            killed = browser_kill(due.profile)
            self.kills += 1
            logger.warning(
                "WhatsApp Web: %s did not answer within %.0f s; its browser was killed (%d process group(s))",
                due.what,
                due.seconds,
                killed,
            )
        return [due.what for _, due in overdue]
