"""Assemble docs/benchmarks.md (and the plots in docs/benchmarks/) from bench/results/*."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from memory import cpu_by_phase, started_by_phase, summary  # noqa: E402
from plots import all_plots  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
MEMORY_RUNS = (
    ("webhook", "bash bench/webhook.sh"),
    ("outbound", "python bench/outbound.py"),
    ("latency", "python bench/latency.py"),
)
SKIPPED_PHASES = ("setup", "warm-up", "shutdown")


def version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False).stdout  # noqa: S603
    except OSError:
        return f"{command[0]}: not found"
    return out.strip().splitlines()[0] if out.strip() else f"{command[0]}: unknown"


def section(name: str) -> list[str]:
    path = RESULTS / name
    return [path.read_text().rstrip(), ""] if path.exists() else []


def image(plots: dict[str, Path], name: str, alt: str) -> list[str]:
    path = plots.get(name)
    return [f"![{alt}]({path.relative_to(DOC.parent).as_posix()})", ""] if path else []


def load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def glance() -> list[str]:
    """The headline figures, when their runs are there."""
    lines = []
    bare, hook = load("wrk-bare.json"), load("wrk-webhook.json")
    if bare and hook:

        def rate(data: dict[str, Any]) -> float:
            return float(data["requests"]) / (float(data["duration_us"]) / 1e6)

        p99 = {p: us for p, us in hook["percentiles"]}.get(99, 0) / 1000
        lines.append(
            f"- Webhook ingestion: **{rate(hook):,.0f} deliveries/s** (p99 {p99:,.0f} ms) against "
            f"{rate(bare):,.0f} req/s for a bare Django view on the same server (target: 1,000/s)."
        )
    latency = load("latency.json")
    for level in (latency or {}).get("levels", []):
        if level["conversations"] == 10 and level["samples"]:
            # Nothing queues at this load, and the LLM stand-in answers at once: what is left is the
            # platform's own time, webhook to Graph send.
            lines.append(
                f"- The pipeline's own time per reply (10 conversations, LLM stand-in answering at once): "
                f"p50 {level['p50']:,.0f} ms, p99 {level['p99']:,.0f} ms."
            )
        if level["conversations"] == 100 and level["samples"]:
            lines.append(
                f"- End to end at 100 concurrent conversations: p50 {level['p50']:,.0f} ms, p95 {level['p95']:,.0f} "
                f"ms, p99 {level['p99']:,.0f} ms ({level['answered']:,} messages, {level['throughput']:.1f} replies/s)."
            )
    return ["## At a glance", "", *lines, ""] if lines else []


def memory_section(plots: dict[str, Path]) -> list[str]:
    runs = [(name, command, load(f"memory-{name}.json")) for name, command in MEMORY_RUNS]
    runs = [(name, command, data) for name, command, data in runs if data]
    if not runs:
        return []
    lines = [
        "## Memory and CPU per process",
        "",
        "Sampled every 0.5 s from /proc during each run above (bench/memory.py). *Steady* is a process's "
        "median over the second half of the run, as the median of the kind's processes; *peak* is the largest "
        "single sample of any of them. RSS counts the pages a forked gunicorn worker still shares with its "
        "master in full; PSS shares them out. *Processes seen* counts every PID: gunicorn recycles a worker "
        "after 5,000 +- 500 requests (`max_requests`), and each PostgreSQL connection is its own backend "
        "process. Redis and *PostgreSQL (whole server, summed)* are the whole servers, shared with anything else "
        "using them while the benchmark ran; the latter sums all its processes, and its CPU includes the "
        "backends that exited (each closed connection).",
        "",
        "| run | process kind | processes seen | steady RSS MiB | peak RSS MiB | steady PSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, _, data in runs:
        for row in summary(data):
            lines.append(
                f"| {name} | {row['kind']} | {row['processes']} | {row['steady_rss']:.0f} | {row['peak_rss']:.0f} "
                f"| {row['steady_pss']:.0f} |"
            )
    lines += ["", *image(plots, "memory", "RSS of each process over each run")]
    cores = os.cpu_count() or 1
    lines += [
        f"CPU used during each phase, in % of one core (this machine has {cores}: {cores * 100}% is all of "
        "it), and in brackets the processes of that kind started during the phase (recycled gunicorn "
        "workers, new PostgreSQL connections). A process that ended between two samples loses its last "
        "half-second, so short-lived backends are under-counted in the per-database row; the whole-server "
        "row counts them.",
        "",
    ]
    for _, command, data in runs:
        cpu, started = cpu_by_phase(data), started_by_phase(data)
        names = [p for p in cpu if p not in SKIPPED_PHASES]
        if not names:
            continue
        kinds = list(dict.fromkeys(proc["kind"] for proc in data["processes"]))
        lines += [
            f"`{command}`:",
            "",
            "| process kind | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for kind in kinds:
            cells = []
            for phase in names:
                new = started.get(phase, {}).get(kind, 0)
                cells.append(f"{cpu[phase].get(kind, 0.0):.0f}%" + (f" (+{new})" if new else ""))
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        # the per-database backends are part of the whole PostgreSQL server when both are there
        whole = any(kind.startswith("PostgreSQL (whole") for kind in kinds)
        counted = [k for k in kinds if not (whole and k.startswith("PostgreSQL backends"))]
        totals = [sum(cpu[p].get(k, 0.0) for k in counted) for p in names]
        lines.append("| **all of the above** | " + " | ".join(f"{total:.0f}%" for total in totals) + " |")
        lines.append("")
    return lines


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
    plots = all_plots()
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (bench/webhook.sh, bench/outbound.py, bench/latency.py, then",
        "bench/report.py, which also draws the plots in docs/benchmarks/). Every process (PostgreSQL, Redis,",
        "gunicorn, Celery workers and beat, the Graph and LLM stand-ins and the load generators) shares the",
        "one machine below, so the figures are a floor for the code on this machine, not a capacity plan.",
        "",
        "## Machine",
        "",
        f"- CPU: {cpu}, {os.cpu_count()} logical CPUs; memory {memory}",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- {version(['psql', '--version'])}; {version(['redis-server', '--version'])}; {version(['wrk', '-v'])}",
        f"- generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        *glance(),
        *section("webhook.md"),
        *image(plots, "webhook-latency", "wrk latency by percentile, bare view and webhook"),
        *section("webhook-queries.md"),
        *section("webhook-profile.md"),
        *section("outbound.md"),
        *section("latency.md"),
        *image(plots, "e2e-latency-growth", "end-to-end latency against concurrent conversations"),
        *image(plots, "e2e-latency-cdf", "cumulative distribution of end-to-end latency per level"),
        *image(plots, "e2e-latency-hist", "histograms of end-to-end latency per level"),
        *section("llm-layout.md"),
        *section("worker-profile.md"),
        *memory_section(plots),
    ]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    DOC.write_text("\n".join(lines))
    print(f"wrote {DOC} and {len(plots)} plots in {DOC.parent / 'benchmarks'}")


if __name__ == "__main__":
    main()
