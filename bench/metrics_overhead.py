"""The cost of the database metrics (issue 18): a statement through Django's own psycopg cursor class,
and through django-prometheus's wrapper of it (what the configured backend uses), as a gunicorn worker
runs it (prometheus_client's multiprocess mode: each statement adds to a counter and a histogram kept in
mmap'd files).

Both cursors share one connection in one process and take turns in blocks of `--block` `SELECT 1`, so
a busy machine slows both alike; the figure is the median block's time per statement, and the ratio.
Needs PostgreSQL on localhost (any database: nothing is written).
Usage: python bench/metrics_overhead.py [--blocks 40] [--block 250] [--database wt_c]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--database", default="wt_c")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-metrics-")
    os.environ.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": folder,  # before prometheus_client is imported, as gunicorn.conf.py does
            "DJANGO_SETTINGS_MODULE": "chatbot.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
            "DEBUG": "0",
            "ENV_FILE": "/dev/null",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdefghij",
            "METRICS_PUBLIC": "1",
        }
    )
    import django

    django.setup()
    from django.db import connection
    from django.db.backends.postgresql.base import Cursor
    from django_prometheus.db.common import ExportingCursorWrapper

    connection.ensure_connection()
    raw = connection.connection
    cursors = {"plain": Cursor(raw), "counted": ExportingCursorWrapper(Cursor, "default", "postgresql")(raw)}  # type: ignore[call-arg]
    times: dict[str, list[float]] = {kind: [] for kind in cursors}
    for cursor in cursors.values():  # warm-up
        for _ in range(args.block):
            cursor.execute("SELECT 1")
            cursor.fetchone()
    for _ in range(args.blocks):
        for kind, cursor in cursors.items():
            start = time.perf_counter()
            for _ in range(args.block):
                cursor.execute("SELECT 1")
                cursor.fetchone()
            times[kind].append((time.perf_counter() - start) / args.block * 1e6)
    shutil.rmtree(folder, ignore_errors=True)
    plain, counted = (statistics.median(times[kind]) for kind in ("plain", "counted"))
    print(
        f"{args.blocks} blocks of {args.block} statements each: plain {plain:.1f} us, counted {counted:.1f} us "
        f"per statement (median block): +{counted - plain:.1f} us, ratio {counted / plain:.3f}"
    )


if __name__ == "__main__":
    main()
