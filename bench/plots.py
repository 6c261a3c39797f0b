"""PNG plots for docs/benchmarks/ from bench/results/*.json (matplotlib, Agg backend).

Each function draws one figure when its data is there and returns the path written (None otherwise);
bench/report.py calls them and links the images from docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "benchmarks"
DPI = 110
# processes drawn on the memory plot (the PostgreSQL backends, Redis and wrk are in the table only)
APP_KINDS = ("gunicorn", "Celery", "bench driver")


def _load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _save(fig: Any, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _ms(value: float, _: object = None) -> str:
    return f"{value / 1000:.3g} s" if value >= 1000 else f"{value:.3g} ms"


def webhook_latency() -> Path | None:
    """wrk's latency percentiles, bare view against webhook (x: 1/(1-p), as HdrHistogram plots do)."""
    runs = [
        (label, _load(name))
        for label, name in (
            ("GET /healthz (bare view)", "wrk-bare.json"),
            ("POST /webhooks/whatsapp/", "wrk-webhook.json"),
        )
    ]
    runs = [(label, data) for label, data in runs if data]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, data in runs:
        points = [(p, us / 1000) for p, us in data["percentiles"] if p < 100]
        rate = data["requests"] / (data["duration_us"] / 1e6)
        ax.plot(
            [1 / (1 - p / 100) for p, _ in points],
            [ms for _, ms in points],
            label=f"{label}: {rate:,.0f} req/s",
        )
    ticks = [50, 90, 99, 99.9, 99.99]
    ax.set_xscale("log")
    ax.set_xticks([1 / (1 - t / 100) for t in ticks], [f"p{t:g}" for t in ticks])
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(_ms))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (log)")
    ax.set_title("Webhook ingestion vs a bare Django view: wrk latency by percentile")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, "webhook-latency.png")


def _levels() -> list[dict[str, Any]]:
    data = _load("latency.json")
    return [level for level in (data or {}).get("levels", []) if level["samples"]]


def e2e_cdf() -> Path | None:
    """The share of replies within x ms, one curve per number of concurrent conversations."""
    levels = _levels()
    if not levels:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for level in levels:
        values = sorted(s[1] for s in level["samples"])
        ax.step(
            values,
            [(i + 1) / len(values) for i in range(len(values))],
            where="post",
            label=f"{level['conversations']:,} conversations (p50 {_ms(round(level['p50']))}, "
            f"p99 {_ms(round(level['p99']))})",
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(_ms))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("webhook POST -> reply at the Graph API (log)")
    ax.set_ylabel("share of messages answered")
    ax.set_ylim(0, 1.01)
    ax.set_title("End-to-end latency, cumulative distribution")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, "e2e-latency-cdf.png")


def e2e_histograms() -> Path | None:
    """One histogram per level, with p50, p95 and p99 marked."""
    levels = _levels()
    if not levels:
        return None
    fig, axes = plt.subplots(len(levels), 1, figsize=(8, 2.4 * len(levels) + 0.6), squeeze=False)
    for ax, level in zip(axes[:, 0], levels, strict=True):
        values = [s[1] for s in level["samples"]]
        ax.hist(values, bins=50, color="tab:blue", alpha=0.8)
        for name, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            ax.axvline(
                level[name],
                color="black",
                linestyle=style,
                linewidth=1,
                label=f"{name} {_ms(round(level[name]))}",
            )
        ax.xaxis.set_major_formatter(FuncFormatter(_ms))
        ax.set_title(
            f"{level['conversations']:,} concurrent conversations, {len(values):,} messages", fontsize=10
        )
        ax.set_ylabel("messages")
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("webhook POST -> reply at the Graph API")
    return _save(fig, "e2e-latency-hist.png")


def e2e_growth() -> Path | None:
    """p50, p95, p99 and max against the number of concurrent conversations, with the throughput."""
    levels = _levels()
    if len(levels) < 2:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [level["conversations"] for level in levels]
    for name, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:"), ("max", "x-.")):
        ax.plot(xs, [level[name] for level in levels], style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(_ms))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("concurrent conversations")
    ax.set_ylabel("end-to-end latency (log)")
    ax.grid(True, which="both", alpha=0.3)
    rate = ax.twinx()
    rate.plot(xs, [level["throughput"] for level in levels], "k*-", alpha=0.5, label="replies/s (right)")
    rate.set_ylabel("replies per second")
    rate.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    more = rate.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    ax.set_title("How end-to-end latency grows with concurrent conversations")
    return _save(fig, "e2e-latency-growth.png")


def memory() -> Path | None:
    """RSS of each application process over each run, phases marked."""
    runs = [(name, _load(f"memory-{name}.json")) for name in ("webhook", "outbound", "latency")]
    runs = [(name, data) for name, data in runs if data]
    if not runs:
        return None
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 3 * len(runs) + 0.5), squeeze=False)
    colors: dict[str, str] = {}
    palette = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3)  # one color per process kind
    for ax, (name, data) in zip(axes[:, 0], runs, strict=True):
        labelled: set[str] = set()
        for proc in data["processes"]:
            kind = proc["kind"]
            if not kind.startswith(APP_KINDS) or not proc["samples"]:
                continue
            if kind not in colors:
                colors[kind] = next(palette)
            color = colors[kind]
            ax.plot(
                [s[0] for s in proc["samples"]],
                [s[1] for s in proc["samples"]],
                color=color,
                label=None if kind in labelled else kind,
                linewidth=1.2,
            )
            labelled.add(kind)
        for start, text in data["marks"]:
            ax.axvline(start, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                text,
                (start, 1),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                rotation=90,
                va="top",
                ha="right",
                color="grey",
            )
        ax.set_title(f"{name}: {data['label']}", fontsize=9)
        ax.set_ylabel("RSS MiB")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("seconds from the start of the run (each line is one process)")
    return _save(fig, "memory.png")


def all_plots() -> dict[str, Path]:
    out = {}
    for name, draw in (
        ("webhook-latency", webhook_latency),
        ("e2e-latency-cdf", e2e_cdf),
        ("e2e-latency-hist", e2e_histograms),
        ("e2e-latency-growth", e2e_growth),
        ("memory", memory),
    ):
        path = draw()
        if path is not None:
            out[name] = path
    return out


if __name__ == "__main__":
    for path in all_plots().values():
        print(f"wrote {path}")
