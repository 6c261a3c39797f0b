"""SQL queries and Redis commands one signed webhook delivery costs, through the whole Django stack.

Posts signed single-message deliveries with Django's test client (all middleware, the real view, the
enqueue after commit) against the database bench/webhook.sh prepared, and records every SQL statement
(CaptureQueriesContext) and every Redis command the enqueue sends (redis-py's execute_command, wrapped).
The first delivery (cold connections, the channel's last_webhook_at heartbeat) is reported apart.

Usage (environment as in bench/webhook.sh): python bench/webhook_queries.py PHONE_NUMBER_ID APP_SECRET
Writes bench/results/webhook-queries.md.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

RUNS = 5


def shape(sql: str) -> str:
    """A statement with its literals and long column lists elided, for grouping."""
    if sql.startswith("SELECT 1  --"):
        return sql
    sql = re.sub(r"'(?:[^']|'')*'", "'?'", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r"SELECT .*? FROM", "SELECT … FROM", sql)
    sql = re.sub(r'INSERT INTO ("[^"]+") \(.*?\) VALUES \(.*?\)', r"INSERT INTO \1 (…) VALUES (…)", sql)
    sql = re.sub(r"SAVEPOINT \"?[\w]+\"?", "SAVEPOINT s", sql)
    sql = sql.replace("|", "\\|")
    return sql if len(sql) <= 160 else sql[:157] + "…"


def main() -> None:
    phone_number_id, secret = sys.argv[1], sys.argv[2]
    import django

    django.setup()
    import redis
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from webhook_bodies import delivery

    from apps.whatsapp.signature import sign

    commands: list[str] = []
    original = redis.Redis.execute_command

    def counting(self: redis.Redis[Any], *args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return original(self, *args, **kwargs)

    redis.Redis.execute_command = counting  # type: ignore[method-assign]
    pipeline_original = redis.client.Pipeline.execute

    def pipeline_counting(self: redis.client.Pipeline[Any], *args: Any, **kwargs: Any) -> Any:
        commands.extend(f"{c[0][0]} (pipelined)" for c in self.command_stack)
        return pipeline_original(self, *args, **kwargs)

    redis.client.Pipeline.execute = pipeline_counting  # type: ignore[method-assign]

    # Django's connection health check (CONN_HEALTH_CHECKS) runs `SELECT 1` on the raw connection, past
    # CaptureQueriesContext: count its calls apart.
    health_checks = [0]
    is_usable = connection.is_usable

    def counting_is_usable() -> bool:
        health_checks[0] += 1
        return bool(is_usable())

    connection.is_usable = counting_is_usable  # type: ignore[method-assign]
    client = Client(HTTP_HOST="127.0.0.1")
    rows = []
    for n in range(RUNS + 1):
        body = delivery(phone_number_id, 900_000 + n)
        commands.clear()
        health_checks[0] = 0
        close_old_connections()  # what request_started does in gunicorn (the test client skips it)
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                "/webhooks/whatsapp/",
                data=body,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=sign(body, secret),
            )
        if response.status_code != 200:
            raise SystemExit(f"webhook answered {response.status_code}: {response.content[:200]!r}")
        checks = ["SELECT 1  -- connection health check (CONN_HEALTH_CHECKS), not captured"] * health_checks[
            0
        ]
        rows.append(([*checks, *(q["sql"] for q in captured.captured_queries)], list(commands)))

    first_sql, first_redis = rows[0]
    steady_sql, steady_redis = rows[-1]
    lines = [
        "## SQL and Redis per webhook delivery",
        "",
        f"`python bench/webhook_queries.py`: {RUNS + 1} signed single-message deliveries posted through Django's "
        "test client (every middleware, the view, the enqueue after commit), each statement captured (and "
        "Django's connection health check counted). "
        f"The first delivery on a fresh connection: {len(first_sql)} SQL statements, {len(first_redis)} Redis "
        f"commands. Each following one: **{len(steady_sql)} SQL statements and {len(steady_redis)} Redis "
        "commands**:",
        "",
        "| # | SQL statement (literals elided) |",
        "|---|---|",
    ]
    lines += [f"| {i} | `{shape(sql)}` |" for i, sql in enumerate(steady_sql, 1)]
    lines += ["", "Redis commands of one delivery (the enqueue of its message): "]
    lines[-1] += ", ".join(f"{name} x{count}" for name, count in Counter(steady_redis).items()) or "none"
    only_first = [shape(sql) for sql in first_sql if shape(sql) not in {shape(s) for s in steady_sql}]
    if only_first:
        lines += ["", "Only in the first delivery: " + "; ".join(f"`{s}`" for s in only_first) + "."]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "webhook-queries.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
