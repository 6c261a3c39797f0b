"""The cost of the database metrics (issue 18): one statement through Django's cursor on the plain
PostgreSQL backend, and on django-prometheus's wrapper as a gunicorn worker runs it (prometheus_client's
multiprocess mode: every statement adds to a counter and a histogram kept in mmap'd files).

Each round runs `--statements` `SELECT 1` in a fresh process per backend, the two backends alternating,
`--rounds` times; the figure is the median per statement, and the ratio of the medians.
Needs PostgreSQL on localhost (any database: nothing is written).
Usage: python bench/metrics_overhead.py [--statements 5000] [--rounds 7] [--database wt_c]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import os, sys, time
import django
from django.conf import settings
settings.DATABASES  # load the settings, then choose the backend before any connection exists
if sys.argv[1] == "plain":
    settings.DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
django.setup()
from django.db import connection
n = int(sys.argv[2])
with connection.cursor() as cursor:
    for _ in range(200):  # warm-up
        cursor.execute("SELECT 1")
    start = time.perf_counter()
    for _ in range(n):
        cursor.execute("SELECT 1")
        cursor.fetchone()
    print((time.perf_counter() - start) / n * 1e6)
"""


def run(kind: str, statements: int, database: str) -> float:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "DEBUG": "0",
        "ENV_FILE": "/dev/null",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdefghij",
        "METRICS_PUBLIC": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as folder:
        if kind == "instrumented":
            env["PROMETHEUS_MULTIPROC_DIR"] = folder
        out = subprocess.run(  # noqa: S603
            [sys.executable, "-c", CHILD, kind, str(statements)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database", default="wt_c")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"plain": [], "instrumented": []}
    for _ in range(args.rounds):
        for kind in times:
            times[kind].append(run(kind, args.statements, args.database))
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    print(json.dumps({"per_statement_us": times, "median_us": medians}, indent=1))
    print(
        f"plain {medians['plain']:.1f} us, instrumented {medians['instrumented']:.1f} us per statement: "
        f"+{medians['instrumented'] - medians['plain']:.1f} us, ratio {medians['instrumented'] / medians['plain']:.3f}"
    )


if __name__ == "__main__":
    main()
