"""`make run`'s Ctrl-C (chatbot/foreground.py): from a real terminal (a pseudo-terminal here), Ctrl-C
stops the command and make ends with status 0 instead of "Interrupt"."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Stands for honcho: waits, and exits 130 on SIGINT as honcho does after stopping its processes.
HONCHO_LIKE = (
    "import signal, sys, time; "
    "signal.signal(signal.SIGINT, lambda *a: (print('stopping', flush=True), sys.exit(130))); "
    "print('started', flush=True); time.sleep(60)"
)


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_ctrl_c_in_a_terminal_stops_the_command_and_make_exits_0(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (tmp_path / "Makefile").write_text(
        f'run:\n\t@{sys.executable} -m chatbot.foreground {sys.executable} -c "{HONCHO_LIKE}"\n'
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own whose controlling terminal is the pty
        os.chdir(tmp_path)
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execvp("make", ["make", "-s", "run"])  # noqa: S606, S607
    try:
        assert b"started" in _read_until(fd, b"started", 20)
        os.write(fd, b"\x03")  # Ctrl-C, as typed
        output = _read_until(fd, b"\xff", 10)  # everything until make exits
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)

    assert b"stopping" in output
    assert b"Interrupt" not in output
    assert os.waitstatus_to_exitcode(status) == 0


def test_without_a_terminal_signals_are_passed_on_and_a_ctrl_c_stop_is_status_0():
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "chatbot.foreground", sys.executable, "-c", HONCHO_LIKE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
    proc.send_signal(signal.SIGINT)

    assert proc.wait(timeout=10) == 0
    assert proc.stdout.read() == b"stopping\n"


def test_a_command_that_fails_keeps_its_status():
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "chatbot.foreground", sys.executable, "-c", "raise SystemExit(3)"], cwd=ROOT
    )

    assert done.returncode == 3
