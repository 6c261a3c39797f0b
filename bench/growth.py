"""Data growth (issue 20): the costs that must stay flat as a business's data grows, measured on a
workspace of 1,000,000 messages in 10,000 conversations over 1,000 channels (one conversation of 2,000
messages), with the production code paths: the prompt history read before every bot reply, the
30-second sweeper, the outbound queue list and its count, the inbox search by message text (API and
dashboard; a common word, a rare one, an absent one, and messages not indexed yet), the search
indexer (the history, and new messages), the admin message list (plain and searched), the webhook's
verify handshake.

The data is generated once in PostgreSQL (`INSERT ... SELECT` over `generate_series`, from template rows
the ORM wrote, so every column holds what the application would write) and kept between runs in the
database `bench_growth`; `--fresh` builds it again. Each figure is the median (and p95) of `--runs`
timings after one warm-up, in one process, on a quiet machine.

Needs PostgreSQL and Redis on localhost.
Usage: python bench/growth.py [--messages 1000000] [--conversations 10000] [--channels 1000] [--runs 15]
       [--fresh] [--name growth] [--index-history]
Writes bench/results/<name>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = os.environ.get("BENCH_GROWTH_DB", "bench_growth")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": "/dev/null",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdef",
        "METRICS_TOKEN": "bench-only-metrics-token-0123",
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "FERNET_KEYS": "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=",
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "WHATSAPP_VERIFY_RATE": "100000/60",  # the handshake is timed, not throttled
    }
)
LONG = 2_000  # messages of the one long conversation
WORDS = (
    "hola pedido tarta envío horario precio gracias cuándo abrís queso reserva factura devolución "
    "order delivery refund opening hours price thanks cake booking invoice problema ayuda"
).split()
SEARCHED = "devolución"  # in ~1 of 25 messages
RARE = "123456"  # one message's number (each body ends in "#<n>")
ABSENT = "zzqx"
NOT_INDEXED = 5_000  # messages after the index's cursor: 5 s of ingest at 1,000/s


def psql(sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)  # noqa: S603, S607


def build(messages: int, conversations: int, channels: int) -> None:
    """Template rows through the ORM, then copies of them in SQL with the varying columns computed."""
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.models import Membership, Role, User, Workspace
    from apps.conversations.models import Contact, Conversation, Message
    from apps.whatsapp.models import VERIFY_TOKEN_PURPOSE, Channel
    from chatbot.crypto import lookup_digests

    connection.close()  # this process's own session would block the DROP
    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(f"CREATE DATABASE {DB}")
    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(slug="growth", name="Growth")
    user = User.objects.create_superuser("growth", "growth@example.com", "growth-bench-password")
    Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    Channel.objects.bulk_create(
        Channel(
            workspace=workspace,
            kind="cloud",
            phone_number_id=str(100000 + n),
            app_secret=f"secret-{n}",
            access_token=f"token-{n}",
            verify_token=f"verify-{n}",
            # bulk_create skips Channel.save(), which keeps the digest the handshake looks up
            verify_token_digest=lookup_digests(f"verify-{n}", purpose=VERIFY_TOKEN_PURPOSE)[0],
            name=f"Number {n}",
        )
        for n in range(channels)
    )
    first_channel = Channel.objects.order_by("pk")[0]
    contact = Contact.objects.create(workspace=workspace, wa_id="34600000000", name="Template")
    conversation = Conversation.objects.create(workspace=workspace, channel=first_channel, contact=contact)
    inbound = Message.objects.create(
        workspace=workspace,
        channel=first_channel,
        conversation=conversation,
        direction="in",
        author="customer",
        body="hola",
        wamid="wamid.template-in",
        status="received",
    )
    outbound = Message.objects.create(
        workspace=workspace,
        channel=first_channel,
        conversation=conversation,
        direction="out",
        author="bot",
        body="hola",
        wamid="wamid.template-out",
        status="delivered",
        send_state="sent",
    )
    words = "(ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "])"
    with connection.cursor() as cursor:
        t0 = time.monotonic()

        def copy(table: str, template_id: int, overrides: dict[str, str], count: int) -> None:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND column_name <> 'id' "
                "ORDER BY ordinal_position",
                [table],
            )
            columns = [row[0] for row in cursor.fetchall()]
            select = ", ".join(overrides.get(column, f"t.{column}") for column in columns)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "  # noqa: S608 - our own names
                f"FROM {table} t CROSS JOIN generate_series(1, {count}) g WHERE t.id = {template_id}"
            )

        copy(
            "conversations_contact",
            contact.pk,
            {"wa_id": "(34610000000 + g)::text", "name": "'Cliente ' || g"},
            conversations,
        )
        cursor.execute(f"SELECT min(id) FROM conversations_contact WHERE id > {contact.pk}")  # noqa: S608
        first_contact = cursor.fetchone()[0]
        cursor.execute("SELECT min(id) FROM whatsapp_channel")
        channel0 = cursor.fetchone()[0]
        copy(
            "conversations_conversation",
            conversation.pk,
            {
                "contact_id": f"{first_contact} + g - 1",
                "channel_id": f"{channel0} + (g % {channels})",
                "status": "(CASE WHEN g % 10 = 0 THEN 'closed' WHEN g % 10 = 1 THEN 'human' ELSE 'open' END)",
                "last_message_at": "now() - (g || ' minutes')::interval",
                "last_inbound_at": "now() - (g || ' minutes')::interval",
            },
            conversations,
        )
        cursor.execute(f"SELECT min(id) FROM conversations_conversation WHERE id > {conversation.pk}")  # noqa: S608
        first_conversation = cursor.fetchone()[0]
        # Messages: the long conversation takes the first LONG of each direction, the rest go round the
        # others; half in, half out.
        per_direction = LONG // 2
        index = f"(CASE WHEN g <= {per_direction} THEN 1 ELSE 2 + ((g - {per_direction}) % {conversations - 1}) END)"
        common = {
            "uid": "gen_random_uuid()",
            "conversation_id": f"{first_conversation} - 1 + {index}",
            "channel_id": f"{channel0} + ({index} % {channels})",  # the conversation's channel
            "body": f"{words}[1 + g % {len(WORDS)}] || ' ' || {words}[1 + (g / 7) % {len(WORDS)}] || ' ' || "
            f"{words}[1 + (g / 3) % {len(WORDS)}] || ' #' || g",
            # Over the past year, oldest first (ids ascend with time, as in production).
            "created_at": f"now() - (({messages} - g) * (31536000.0 / {messages}) || ' seconds')::interval",
        }
        half = messages // 2
        copy(
            "conversations_message",
            inbound.pk,
            {**common, "wamid": "'wamid.in.' || g", "processed_at": "now() - interval '1 minute'"},
            half,
        )
        copy(
            "conversations_message",
            outbound.pk,
            {**common, "wamid": "'wamid.out.' || g", "dedupe_key": "'reply:' || g"},
            messages - half,
        )
        cursor.execute("ANALYZE")
        print(f"generated in {time.monotonic() - t0:.0f} s", flush=True)


def small_workspace() -> str:
    """A second, small tenant (100 messages) beside the big one, made once: what it pays for a search
    must not grow with the other's data."""
    from django.utils import timezone

    from apps.accounts.models import Membership, Role, User, Workspace
    from apps.conversations.models import Contact, Conversation, Message
    from apps.whatsapp.models import Channel

    workspace, created = Workspace.objects.get_or_create(slug="growth-small", defaults={"name": "Small"})
    if created:
        Membership.objects.create(
            user=User.objects.get(username="growth"), workspace=workspace, role=Role.OWNER
        )
        channel = Channel.objects.create(
            workspace=workspace, kind="cloud", phone_number_id="999999", name="Small"
        )
        contact = Contact.objects.create(workspace=workspace, wa_id="34699000000", name="Pequeña")
        conversation = Conversation.objects.create(workspace=workspace, channel=channel, contact=contact)
        Message.objects.bulk_create(
            Message(
                workspace=workspace, channel=channel, conversation=conversation, direction="in",
                author="customer", body=f"{WORDS[n % len(WORDS)]} pregunta {n}", wamid=f"wamid.small.{n}",
            )
            for n in range(100)
        )  # fmt: skip
    # Processed, as a real tenant's are: unprocessed rows would be re-queued by every sweeper run timed.
    Message.objects.filter(workspace=workspace, processed_at__isnull=True).update(processed_at=timezone.now())
    return workspace.slug


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    fn()  # warm-up: connections, caches, compiled statements
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
    }


def measure(runs: int) -> dict[str, dict[str, float]]:
    from datetime import timedelta

    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from apps.accounts.models import User, Workspace
    from apps.conversations.models import Conversation, Message
    from apps.conversations.services import replies, search_index
    from apps.conversations.services.sweeper import sweep
    from apps.whatsapp.models import Channel

    workspace = Workspace.objects.get(slug="growth")
    long_conversation = Conversation.objects.get(workspace=workspace, messages__wamid="wamid.in.1")
    long_last = (
        Message.objects.filter(conversation=long_conversation).order_by("-pk").values_list("pk", flat=True)[0]
    )
    other = (
        Conversation.objects.filter(workspace=workspace).exclude(pk=long_conversation.pk).order_by("-pk")[0]
    )
    other_last = Message.objects.filter(conversation=other).order_by("-pk").values_list("pk", flat=True)[0]
    web = Client()
    web.force_login(User.objects.get(username="growth"))
    api = Client()
    login = api.post(
        "/api/auth/login",
        {"username": "growth", "password": "growth-bench-password"},
        content_type="application/json",
    )
    headers = {"Authorization": f"Bearer {login.json()['access']}", "X-Workspace": workspace.slug}

    def get(path: str, workspace_slug: str = workspace.slug) -> Callable[[], object]:
        client = api if path.startswith("/api/") else web

        def call() -> object:
            response = client.get(path, headers={**headers, "X-Workspace": workspace_slug})
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
            return response

        return call

    verify = Client()
    channels = Channel.objects.filter(workspace=workspace).count()

    def handshake() -> object:
        query = {"hub.mode": "subscribe", "hub.verify_token": f"verify-{channels - 1}", "hub.challenge": "1"}
        response = verify.get("/webhooks/whatsapp/", query)
        if response.status_code != 200:
            raise SystemExit(f"verify handshake: {response.status_code}")
        return response

    small = small_workspace()
    settled = timezone.now() + search_index.SETTLE + timedelta(seconds=1)
    search_index.search_index_update(budget=3600, now=settled)  # the small workspace's messages

    figures = {
        "prompt history, conversation of 2,000 messages": timed(
            lambda: replies._turns(long_conversation, long_last), runs
        ),
        "prompt history, conversation of ~100 messages": timed(
            lambda: replies._turns(other, other_last), runs
        ),
        "sweeper run (nothing due)": timed(lambda: sweep(processing_timeout=timedelta(minutes=5)), runs),
        "queue list API (first page and count)": timed(get("/api/queue/"), runs),
        f"inbox search API (q={SEARCHED})": timed(get(f"/api/conversations/?q={SEARCHED}"), runs),
        f"inbox search API, a rare word (q={RARE})": timed(get(f"/api/conversations/?q={RARE}"), runs),
        f"inbox search API, a word found nowhere (q={ABSENT})": timed(
            get(f"/api/conversations/?q={ABSENT}"), runs
        ),
        f"inbox search API, a 100-message workspace beside it (q={SEARCHED})": timed(
            get(f"/api/conversations/?q={SEARCHED}", small), runs
        ),
        f"inbox search dashboard (q={SEARCHED})": timed(get(f"/inbox/list/?q={SEARCHED}"), runs),
        "admin message list": timed(get("/admin/conversations/message/"), runs),
        f"admin message list searched (q={SEARCHED})": timed(
            get(f"/admin/conversations/message/?q={SEARCHED}"), runs
        ),
        f"webhook verify handshake ({channels:,} channels)": timed(handshake, runs),
    }
    # Messages the indexer has not read yet are searched one by one: what a search costs with a few
    # seconds of peak ingest behind the cursor, and what indexing them costs. Rolled back after.
    with transaction.atomic():
        with connection.cursor() as cursor:
            columns = [
                str(field.column)
                for field in Message._meta.concrete_fields
                if field.column not in ("id", "uid", "wamid", "dedupe_key")
            ]
            cursor.execute(
                f"INSERT INTO conversations_message (uid, wamid, dedupe_key, {', '.join(columns)}) "  # noqa: S608
                f"SELECT gen_random_uuid(), 'wamid.late.' || id, '', {', '.join(columns)} FROM conversations_message "
                f"WHERE workspace_id = %s ORDER BY id DESC LIMIT {NOT_INDEXED}",
                [workspace.pk],
            )
        figures[f"inbox search API, {NOT_INDEXED:,} messages not indexed yet (q={SEARCHED})"] = timed(
            get(f"/api/conversations/?q={SEARCHED}"), runs
        )
        started = time.perf_counter()
        run = search_index.search_index_update(budget=3600, now=timezone.now() + search_index.SETTLE * 2)
        took = round((time.perf_counter() - started) * 1000, 2)
        if run.messages != NOT_INDEXED:
            raise SystemExit(f"the indexer read {run.messages} messages, not {NOT_INDEXED}: {run}")
        figures[f"search indexer, {NOT_INDEXED:,} new messages (one run)"] = {
            "median_ms": took,
            "p95_ms": took,
        }
        transaction.set_rollback(True)
    return figures


def index_history() -> dict[str, float]:
    """The search index built over the whole message table, as after the upgrade that adds it."""
    from django.db import connection

    from apps.conversations.services import search_index

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE conversations_conversationsearch")
        cursor.execute("SELECT max(id) FROM conversations_message")
        newest = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE conversations_searchindexcursor SET last_message_id = %s, backfill_below = %s",
            [newest, newest + 1],
        )
    started = time.perf_counter()
    while search_index.search_index_update(budget=3600).backfilled_ids:
        pass
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE conversations_conversationsearch")
        cursor.execute("SELECT pg_total_relation_size('conversations_conversationsearch')")
        size = cursor.fetchone()[0]
    print(f"search index: history of {newest:,} ids in {seconds:.1f} s, {size / 2**20:.1f} MiB", flush=True)
    return {"seconds": round(seconds, 1), "mib": round(size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--name", default="growth")
    parser.add_argument(
        "--index-history", action="store_true", help="Build the search index from nothing first, timed."
    )
    args = parser.parse_args()

    import django

    django.setup()
    from apps.conversations.models import Message

    try:
        present = Message.objects.count()
    except Exception:  # noqa: BLE001 - no database or no tables yet
        present = 0
    if args.fresh or present < args.messages:
        build(args.messages, args.conversations, args.channels)
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a database kept from an older checkout
    print(f"messages: {Message.objects.count():,}", flush=True)
    history = index_history() if args.index_history else None
    figures = measure(args.runs)
    command = "python bench/growth.py " + " ".join(sys.argv[1:])
    lines = [
        f"`{command}` ({Message.objects.count():,} messages, median and p95 of {args.runs} runs):",
        "",
        "| what | median | p95 |",
        "|---|---|---|",
        *(f"| {what} | {f['median_ms']} ms | {f['p95_ms']} ms |" for what, f in figures.items()),
    ]
    if history:
        lines += ["", f"Search index of the whole history: {history['seconds']} s, {history['mib']} MiB."]
    print("\n".join(lines))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{args.name}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
