"""Memory and CPU of the benchmarked processes, sampled from /proc while a run goes on.

Each sample of each process holds its RSS and PSS (MiB) and the CPU seconds it has used so far. RSS counts
pages shared with a forked parent in full; PSS shares them out, so the PSS of a kind's processes adds up to
what they really hold together.

A watch is `KIND=PID` (that process), `KIND/CHILD_KIND=PID` (that process and, under CHILD_KIND, every
descendant, found again at each sample so recycled gunicorn workers and prefork children are followed), or
`KIND=cmd:TEXT` (every process whose command line contains TEXT, e.g. the PostgreSQL backends serving one
database: `postgres: 15/main: postgres bench_webhook ...`), or `KIND=tree:PID` (that process and all its
descendants as one, their CPU including that of children already exited: a whole PostgreSQL server, whose
backends come and go with each connection).

As a library: `Sampler(label, {"celery worker": pid}).start()` ... `.mark("phase")` ... `.stop(path)`.
As a command (bench/webhook.sh): python bench/memory.py OUT.json LABEL "gunicorn master/gunicorn worker=PID"
samples until SIGTERM or SIGINT, then writes OUT.json. bench/report.py summarises the files.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

INTERVAL = 0.5  # seconds between samples
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _kb(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def usage(pid: int) -> tuple[float, float, float] | None:
    """(RSS MiB, PSS MiB, CPU seconds used so far), or None when the process is gone."""
    proc = Path(f"/proc/{pid}")
    pss = _kb(proc / "smaps_rollup", "Pss:")
    rss = _kb(proc / "status", "VmRSS:")
    try:
        # fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None
    if rss is None:
        return None
    return rss / 1024, (pss if pss is not None else rss) / 1024, cpu


def tree_usage(pid: int) -> tuple[float, float, float] | None:
    """(RSS MiB, PSS MiB, CPU seconds) of a process and all its descendants summed; the CPU includes the
    children that have already exited (reaped into the parent's cutime and cstime)."""
    root = usage(pid)
    if root is None:
        return None
    rss, pss, cpu = root
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu += (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None
    for child in descendants(pid):
        used = usage(child)
        if used is not None:
            rss, pss, cpu = rss + used[0], pss + used[1], cpu + used[2]
    return rss, pss, cpu


def postmaster_pid() -> int:
    """The PID of the PostgreSQL server on 127.0.0.1 (from postmaster.pid in its data directory)."""
    data = subprocess.run(  # noqa: S603
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW data_directory"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return int((Path(data) / "postmaster.pid").read_text().split()[0])


def matching(text: str) -> list[int]:
    """Processes whose command line contains `text` (not this one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all its threads' children)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


class Sampler:
    """Samples the watched processes every `interval` seconds from a daemon thread."""

    def __init__(self, label: str, watches: dict[str, int | str], interval: float = INTERVAL) -> None:
        self.label = label
        self.watches: list[tuple[str, int | str]] = list(watches.items())
        self.interval = interval
        self.started = time.monotonic()
        self.samples: dict[int, dict[str, Any]] = {}  # pid -> {"kind", "samples": [[t, rss, pss, cpu]]}
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def watch(self, spec: str, watched: int | str) -> None:
        """Also sample these processes from now on (e.g. workers started for one phase)."""
        self.watches = [*self.watches, (spec, watched)]

    def mark(self, text: str) -> None:
        """Note when a phase of the run starts (drawn on the memory plot)."""
        self.marks.append((round(time.monotonic() - self.started, 2), text))

    def sample(self) -> None:
        now = round(time.monotonic() - self.started, 2)
        for spec, watched in self.watches:
            kind, _, child_kind = spec.partition("/")
            if isinstance(watched, str) and watched.startswith("tree:"):
                pid = int(watched.removeprefix("tree:"))
                used = tree_usage(pid)
                if used is not None:
                    entry = self.samples.setdefault(pid, {"kind": kind, "samples": []})
                    entry["samples"].append([now, round(used[0], 1), round(used[1], 1), round(used[2], 2)])
                continue
            if isinstance(watched, str):
                targets = [(pid, kind) for pid in matching(watched.removeprefix("cmd:"))]
            else:
                targets = [(watched, kind)]
                if child_kind:
                    targets += [(child, child_kind) for child in descendants(watched)]
            for pid, target_kind in targets:
                used = usage(pid)
                if used is None:
                    continue
                entry = self.samples.setdefault(pid, {"kind": target_kind, "samples": []})
                entry["samples"].append([now, round(used[0], 1), round(used[1], 1), round(used[2], 2)])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self, path: Path | str | None = None) -> dict[str, Any]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        data = {
            "label": self.label,
            "interval": self.interval,
            "duration": round(time.monotonic() - self.started, 2),
            "marks": self.marks,
            "processes": [{"pid": pid, **entry} for pid, entry in sorted(self.samples.items())],
        }
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(data))
        return data


def summary(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per process kind: processes seen, steady and peak RSS, steady PSS (MiB), in order of first sight.

    Steady is each process's median over the second half of the run (its whole life if it started later);
    the kind's steady figure is the median of its processes'. Peak is the largest single sample.
    """
    half = data["duration"] / 2
    kinds: dict[str, dict[str, list[float]]] = {}
    for proc in data["processes"]:
        samples = proc["samples"]
        if not samples:
            continue
        late = [s for s in samples if s[0] >= half] or samples
        entry = kinds.setdefault(proc["kind"], {"steady": [], "pss": [], "peak": []})
        entry["steady"].append(statistics.median(s[1] for s in late))
        entry["pss"].append(statistics.median(s[2] for s in late))
        entry["peak"].append(max(s[1] for s in samples))
    return [
        {
            "kind": kind,
            "processes": len(v["steady"]),
            "steady_rss": statistics.median(v["steady"]),
            "peak_rss": max(v["peak"]),
            "steady_pss": statistics.median(v["pss"]),
        }
        for kind, v in kinds.items()
    ]


def phases(data: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(name, start, end) of each marked phase; the whole run when nothing was marked."""
    marks = data["marks"] or [[0.0, "whole run"]]
    ends = [start for start, _ in marks[1:]] + [data["duration"]]
    return [(name, start, end) for (start, name), end in zip(marks, ends, strict=True)]


def cpu_by_phase(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per phase, per process kind: CPU used during the phase in % of one core (100 = one core busy)."""
    out: dict[str, dict[str, float]] = {}
    for name, start, end in phases(data):
        if end - start < data["interval"] * 2:
            continue
        used: dict[str, float] = {}
        for proc in data["processes"]:
            samples = proc["samples"]
            before = [s[3] for s in samples if s[0] <= start]
            during = [s[3] for s in samples if start < s[0] <= end]
            if not during:
                continue
            # a process first seen during the phase started in it (a new worker, a new connection)
            used[proc["kind"]] = used.get(proc["kind"], 0.0) + during[-1] - (before[-1] if before else 0.0)
        out[name] = {kind: 100 * seconds / (end - start) for kind, seconds in used.items()}
    return out


def started_by_phase(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per phase, per process kind: processes first seen during the phase (recycled workers, new
    PostgreSQL connections)."""
    out: dict[str, dict[str, int]] = {}
    first_sample = min((p["samples"][0][0] for p in data["processes"] if p["samples"]), default=0.0)
    for name, start, end in phases(data):
        counts: dict[str, int] = {}
        for proc in data["processes"]:
            if (
                proc["samples"]
                and first_sample < proc["samples"][0][0]
                and start < proc["samples"][0][0] <= end
            ):
                counts[proc["kind"]] = counts.get(proc["kind"], 0) + 1
        out[name] = counts
    return out


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    out, label = sys.argv[1], sys.argv[2]
    watches: dict[str, int | str] = {}
    for spec in sys.argv[3:]:
        kind, _, watched = spec.partition("=")
        watches[kind] = watched if watched.startswith(("cmd:", "tree:")) else int(watched)
    sampler = Sampler(label, watches).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    marks = Path(out + ".marks")  # a line appended to this file marks a phase (bench/webhook.sh)
    seen = 0
    while not done.wait(0.2):
        if marks.exists():
            lines = marks.read_text().splitlines()
            for line in lines[seen:]:
                sampler.mark(line)
            seen = len(lines)
    sampler.stop(out)
    marks.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
