"""Assemble docs/benchmarks.md from a description of the machine and bench/results/*.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("webhook.md", "outbound.md", "latency.md")


def version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False).stdout  # noqa: S603
    except OSError:
        return f"{command[0]}: not found"
    return out.strip().splitlines()[0] if out.strip() else f"{command[0]}: unknown"


def main() -> None:
    memory = cpu = "unknown"
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (bench/webhook.sh, bench/outbound.py, bench/latency.py, then",
        "bench/report.py). Every process (PostgreSQL, Redis, gunicorn, Celery workers, the Graph and LLM",
        "stand-ins and the load generator) shares the one machine below, so the figures are a floor for",
        "the code on this machine, not a capacity plan.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu}, {os.cpu_count()} logical CPUs; memory {memory}",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- {version(['psql', '--version'])}; {version(['redis-server', '--version'])}",
        f"- generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
    ]
    for name in ORDER:
        path = ROOT / "bench" / "results" / name
        if path.exists():
            lines += [path.read_text().rstrip(), ""]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines))
    print(f"wrote {ROOT / 'docs' / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
