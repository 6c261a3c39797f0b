"""Run a command (honcho, for `make run`) as the terminal's foreground job, so Ctrl-C stops it and
`make run` ends with status 0.

From a terminal, Ctrl-C sends SIGINT to the foreground process group: make is in it, and make dies
of it ("make: *** [run] Interrupt", status 130) whatever its recipe does. Here the command gets a
process group of its own and the terminal's foreground, so Ctrl-C reaches it alone (honcho then stops
every process it started); the terminal is handed back afterwards. Without a terminal (CI, a pipe),
SIGINT and SIGTERM are passed on to the command.

Usage: python -m chatbot.foreground COMMAND [ARG ...]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from types import FrameType

STOPPED_BY_CTRL_C = (130, -signal.SIGINT)  # honcho exits 130 after a SIGINT


def _terminal() -> int | None:
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():  # we are the foreground job: ours to hand on
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def run(command: list[str]) -> int:
    terminal = _terminal()
    # Taking and giving back the terminal from a background group would stop us with SIGTTOU.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    proc = subprocess.Popen(command, process_group=0)  # noqa: S603 - the Makefile's own command
    if terminal is not None:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(terminal, proc.pid)

    def pass_on(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    status = proc.wait()
    if terminal is not None:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(terminal, os.getpgrp())
        os.close(terminal)
    return 0 if status in STOPPED_BY_CTRL_C else status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
