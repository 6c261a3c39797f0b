"""The driver's deadline for page calls: an overrun kills the browser's whole process group (as
Playwright starts Chromium: a group leader holding its renderers), and nothing else."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.whatsapp_web.watchdog import Watchdog, browser_pids

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux, as worker-web)")

SLEEPER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', '--type=renderer', sys.argv[1]]); time.sleep(60)"


def _fake_browser(profile: Path) -> subprocess.Popen[bytes]:
    """A process that looks like Chromium on this profile, with a "renderer" child in its group."""
    flag = f"--user-data-dir={profile}"
    return subprocess.Popen([sys.executable, "-c", SLEEPER, flag], start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_call_past_its_deadline_kills_that_profiles_browser_and_its_group(tmp_path):
    mine, other = _fake_browser(tmp_path / "channel-1"), _fake_browser(tmp_path / "channel-2")
    try:
        deadline = time.monotonic() + 10
        while len(browser_pids(tmp_path / "channel-1")) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert browser_pids(tmp_path / "channel-1") == [mine.pid]  # the "renderer" is not a browser
        children = Path(f"/proc/{mine.pid}/task/{mine.pid}/children")
        while not children.read_text().split() and time.monotonic() < deadline:
            time.sleep(0.05)
        renderer = int(children.read_text().split()[0])
        watchdog = Watchdog()

        with watchdog.deadline(tmp_path / "channel-1", 30, "send"):
            assert watchdog.check(time.monotonic() + 10) == []  # within its time: untouched
            assert watchdog.check(time.monotonic() + 31) == ["send"]
        mine.wait(timeout=10)

        assert mine.returncode == -9 and watchdog.kills == 1
        deadline = time.monotonic() + 10
        while _alive(renderer) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(renderer)
        assert other.poll() is None  # another channel's browser lives on
        with watchdog.deadline(tmp_path / "channel-2", 30, "heartbeat"):
            pass
        assert watchdog.check(time.monotonic() + 60) == []  # a call that returned is forgotten
        assert other.poll() is None
    finally:
        for process in (mine, other):
            process.kill()
            process.wait()
