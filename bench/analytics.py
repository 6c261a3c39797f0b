"""Analytics on a year of data (issue 14, item 6): every /api/analytics/ request, each CSV export and
the dashboard's Analytics page, timed over a whole year and over the last 30 days, on bench/growth.py's
data (1,000,000 messages in 10,000 conversations over 1,000 channels), built by its code into a
database of its own, kept between runs (`bench_analytics`; BENCH_GROWTH_DB overrides it). Target: at
most 500 ms each.

Messages and replies are read from the roll-ups (refreshed here as beat does, both refreshes timed)
plus the rows newer than them. The first run on a database adds what analytics reads and growth.py
does not write, in SQL: one reply usage row per bot message (three providers, a cache hit in five, a fallback in ten, the offline
responder after every provider failed in fifty), conversations opened at their first message, a tenth
handed to a person (their replies then by staff) and a tenth closed, read receipts and failures with
Meta's error codes, 5,000 alerts and 2,000 opt-outs; the workspace is put on Madrid time so every
figure pays for the time-zone conversion. Each figure is the median (and p95) of `--runs` timings
after one warm-up, in one process.

Then the year's API requests again with the roll-ups out of reach (read from the source tables, as
without beat), side by side.

Usage: python bench/analytics.py [--messages 1000000] [--conversations 10000] [--channels 1000]
       [--runs 15] [--source-runs 5] [--name analytics]
Writes bench/results/<name>.md and .json.
"""

# ruff: noqa: S608 - the SQL is our own; the only value put in it is the workspace's integer id
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# growth.py's data in a database of its own: the rows added here stay out of growth.py's figures.
os.environ.setdefault("BENCH_GROWTH_DB", "bench_analytics")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
import growth  # noqa: E402 - sets the environment (database, secrets) before Django loads

ROOT = growth.ROOT
TIMEZONE = "Europe/Madrid"


def enrich(slug: str) -> None:
    """Once per database: the rows analytics reads that growth.py does not make."""
    from django.db import connection

    from apps.accounts.models import Workspace
    from apps.assistant.models import ReplyUsage

    workspace = Workspace.objects.get(slug=slug)
    if ReplyUsage.objects.filter(workspace=workspace).exists():
        return
    t0 = time.monotonic()
    ws = workspace.pk
    statements = [
        f"UPDATE accounts_workspace SET timezone = '{TIMEZONE}' WHERE id = {ws}",
        # Opened at the first message, handed (status human: a tenth) five minutes later, closed
        # (a tenth) at the last message.
        f"""UPDATE conversations_conversation c SET created_at = m.first_at,
              handed_at = CASE WHEN c.status = 'human' THEN m.first_at + interval '5 minutes' END,
              closed_at = CASE WHEN c.status = 'closed' THEN m.last_at END
            FROM (SELECT conversation_id, min(created_at) AS first_at, max(created_at) AS last_at
                  FROM conversations_message WHERE workspace_id = {ws} GROUP BY conversation_id) m
            WHERE c.id = m.conversation_id""",
        f"""UPDATE conversations_message m SET author = 'agent' FROM conversations_conversation c
            WHERE m.conversation_id = c.id AND c.status = 'human' AND m.direction = 'out'
              AND m.workspace_id = {ws}""",
        f"""UPDATE conversations_message SET status = CASE WHEN id % 50 = 0 THEN 'failed'
              WHEN id % 3 = 0 THEN 'read' ELSE status END,
              error_code = CASE WHEN id % 100 = 0 THEN 131026 WHEN id % 50 = 0 THEN 131047 END,
              error_title = CASE WHEN id % 100 = 0 THEN 'Message undeliverable'
                                 WHEN id % 50 = 0 THEN 'Re-engagement message' ELSE '' END
            WHERE workspace_id = {ws} AND direction = 'out' AND (id % 3 = 0 OR id % 50 = 0)""",
        f"""INSERT INTO assistant_replyusage (workspace_id, conversation_id, turn_key, provider, model,
              latency_ms, tokens_in, tokens_out, cost_usd, cache_hit, fallback_path, error, created_at)
            SELECT {ws}, m.conversation_id, 'bench:' || m.id,
              CASE WHEN m.id % 50 = 0 THEN 'offline' WHEN m.id % 2 = 0 THEN 'openai' ELSE 'gemini' END,
              CASE WHEN m.id % 50 = 0 THEN '' WHEN m.id % 2 = 0 THEN 'gpt-4o-mini' ELSE 'gemini-2.0-flash' END,
              300 + (m.id * 7919) % 2500, 800 + m.id % 400, 60 + m.id % 90, 0.00021, m.id % 5 = 0,
              CASE WHEN m.id % 5 = 0 THEN '[]'::jsonb
                   WHEN m.id % 50 = 0 OR m.id % 10 = 1
                     THEN '[{{"provider": "openai", "outcome": "timeout"}}, {{"provider": "gemini", "outcome": "ok"}}]'
                   ELSE '[{{"provider": "openai", "outcome": "ok"}}]' END::jsonb,
              '', m.created_at
            FROM conversations_message m WHERE m.workspace_id = {ws} AND m.author = 'bot'""",
        f"""INSERT INTO alerts_alert (workspace_id, rule_name, kind, severity, channel_id, conversation_id,
              summary, state, created_at)
            SELECT {ws}, 'Refunds', 'keyword', (ARRAY['low', 'medium', 'high'])[1 + g % 3], c.channel_id, c.id,
              'reembolso', (ARRAY['open', 'acknowledged', 'resolved'])[1 + g % 3],
              now() - (g * 6307 || ' seconds')::interval
            FROM generate_series(1, 5000) g
            JOIN conversations_conversation c ON c.id = (SELECT min(id) FROM conversations_conversation
                                                         WHERE workspace_id = {ws}) + g % 9000""",
        f"""INSERT INTO conversations_consentrecord (workspace_id, contact_id, kind, opted_in, source, at)
            SELECT {ws}, c.contact_id, 'marketing', false, (ARRAY['keyword', 'button'])[1 + g % 2],
              now() - (g * 15731 || ' seconds')::interval
            FROM generate_series(1, 2000) g
            JOIN conversations_conversation c ON c.id = (SELECT min(id) FROM conversations_conversation
                                                         WHERE workspace_id = {ws}) + g * 4""",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
    # Production tables are vacuumed by autovacuum; a freshly written one is not yet.
    connection.close()
    growth.psql("VACUUM ANALYZE")
    print(f"analytics rows added in {time.monotonic() - t0:.0f} s", flush=True)


def rollups() -> list[str]:
    """The roll-ups' refresh as beat runs it: the first one on a database counts everything, the next
    ones the last ANALYTICS_ROLLUP_REFRESH_DAYS days."""
    from apps.accounts.models import Workspace
    from apps.analytics.models import MessageRollup, ReplyRollup, RollupState
    from apps.analytics.services import rollup_refresh

    workspace = Workspace.objects.get(slug="growth")
    lines = []
    for _ in range(2):
        first = not RollupState.objects.filter(workspace=workspace).exclude(zone="").exists()
        t0 = time.perf_counter()
        rollup_refresh(workspace=workspace)
        took = time.perf_counter() - t0
        kind = "first (everything)" if first else "incremental (the last days)"
        lines.append(f"- roll-up refresh, {kind}: {took:.2f} s")
    lines.append(
        f"- roll-up rows: {MessageRollup.objects.filter(workspace=workspace).count():,} of messages, "
        f"{ReplyRollup.objects.filter(workspace=workspace).count():,} of replies"
    )
    print("\n".join(lines), flush=True)
    return lines


PATHS = ("", "messages/", "conversations/", "response-times/", "delivery/", "llm/", "alerts/", "opt-outs/")


def measure(runs: int, slug: str, *, without_rollups: bool = False) -> dict[str, dict[str, float]]:
    from django.test import Client

    from apps.accounts.models import User, Workspace
    from apps.analytics.export import TABLES
    from apps.analytics.selectors import workspace_zone

    workspace = Workspace.objects.get(slug=slug)
    today = timezone_today(workspace_zone(workspace))
    year = f"start={today - timedelta(days=365):%Y-%m-%d}&end={today:%Y-%m-%d}"
    month = f"start={today - timedelta(days=29):%Y-%m-%d}&end={today:%Y-%m-%d}"
    web = Client()
    web.force_login(User.objects.get(username="growth"))
    api = Client()
    login = api.post(
        "/api/auth/login",
        {"username": "growth", "password": "growth-bench-password"},
        content_type="application/json",
    )
    token = {"Authorization": f"Bearer {login.json()['access']}"}

    def get(path: str) -> Callable[[], object]:
        client, auth = (api, token) if path.startswith("/api/") else (web, {})

        def call() -> object:
            response = client.get(path, headers={"X-Workspace": slug, **auth})
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
            return response

        return call

    figures: dict[str, dict[str, float]] = {}
    if without_rollups:
        # The same requests with the roll-ups out of reach (their zone no longer the workspace's): the
        # selectors then read the source tables, as they would without beat. Restored afterwards.
        from apps.analytics.models import RollupState

        zone = RollupState.objects.get(workspace=workspace).zone
        RollupState.objects.filter(workspace=workspace).update(zone="side-by-side")
        try:
            for path in ("messages/", "delivery/", "llm/"):  # the ones read from the roll-ups
                figures[f"GET /api/analytics/{path} (year)"] = growth.timed(
                    get(f"/api/analytics/{path}?{year}"), runs
                )
        finally:
            RollupState.objects.filter(workspace=workspace).update(zone=zone)
        return figures
    for label, query in (("year", year), ("30 days", month)):
        for path in PATHS:
            figures[f"GET /api/analytics/{path} ({label})"] = growth.timed(
                get(f"/api/analytics/{path}?{query}"), runs
            )
        figures[f"dashboard page /analytics/ ({label})"] = growth.timed(get(f"/analytics/?{query}"), runs)
    for table in TABLES:
        figures[f"CSV {table} (year)"] = growth.timed(get(f"/api/analytics/export/{table}?{year}"), runs)
    return figures


def timezone_today(zone: object) -> date:
    from datetime import datetime

    return datetime.now(zone).date()  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--name", default="analytics")
    parser.add_argument(
        "--source-runs", type=int, default=5, help="runs of the same requests without the roll-ups (0: skip)"
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from apps.conversations.models import Message

    try:
        present = Message.objects.count()
    except Exception:  # noqa: BLE001 - no database or no tables yet
        present = 0
    if present < args.messages:
        growth.build(args.messages, args.conversations, args.channels)
    else:
        call_command("migrate", verbosity=0)  # a database kept from an older checkout
    enrich("growth")
    count = Message.objects.count()
    print(f"messages: {count:,}", flush=True)
    refreshes = rollups()
    figures = measure(args.runs, "growth")
    source = measure(args.source_runs, "growth", without_rollups=True) if args.source_runs else {}
    command = "python bench/analytics.py " + " ".join(sys.argv[1:])
    over = [what for what, f in figures.items() if f["median_ms"] > 500]
    lines = [
        f"`{command}` ({count:,} messages, median and p95 of {args.runs} runs; target 500 ms):",
        "",
        *refreshes,
        "",
        "| what | median | p95 |",
        "|---|---|---|",
        *(f"| {what} | {f['median_ms']} ms | {f['p95_ms']} ms |" for what, f in figures.items()),
        "",
        f"Over 500 ms: {', '.join(over) if over else 'none'}.",
    ]
    if source:
        lines += [
            "",
            f"Side by side, the same requests read from the source tables (roll-ups out of reach; median of "
            f"{args.source_runs} runs):",
            "",
            "| request (year) | roll-ups | source tables | ratio |",
            "|---|---|---|---|",
        ]
        for what, f in source.items():
            rolled = figures[what]["median_ms"]
            lines.append(f"| {what} | {rolled} ms | {f['median_ms']} ms | {f['median_ms'] / rolled:.1f}x |")
    print("\n".join(lines))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{args.name}.json").write_text(
        json.dumps({"rollups": figures, "source": source}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
