"""Summarise py-spy raw profiles: the gunicorn workers under webhook load (bench/webhook.sh) or the
Celery worker during one end-to-end latency level (bench/latency.py).

Two profiles of the same run: ACTIVE (every thread py-spy finds running, including a thread blocked in
psycopg's or redis-py's socket wait: where the time goes) and GIL (only the thread holding the GIL:
where the Python CPU goes). Prints markdown: the share of samples in each step of a webhook request
or of a Celery task, then the functions with the most samples of their own and their packages.

Usage: python bench/profile_summary.py webhook ACTIVE.txt GIL.txt [--rps R] [--unprofiled-rps R] [--seconds S]
       python bench/profile_summary.py worker ACTIVE.txt GIL.txt [--title TEXT]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<name>.+) \((?P<file>[^()]*?)(?::\d+)?\)$")
IMPORTS = "_find_and_load"


@dataclass(frozen=True)
class Stack:
    names: frozenset[str]  # function names ("Class.method")
    files: frozenset[str]  # their files, relative to site-packages or the project
    leaf: str  # "name (file)" of the frame on top
    count: int


Test = Callable[[Stack], bool]


@dataclass
class Profile:
    total: int = 0
    stacks: list[Stack] = field(default_factory=list)

    def share(self, test: Test) -> float:
        hits = sum(stack.count for stack in self.stacks if test(stack))
        return 100 * hits / self.total if self.total else 0.0

    def leaves(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for stack in self.stacks:
            out[stack.leaf] += stack.count
        return out

    def without(self, test: Test) -> Profile:
        kept = [stack for stack in self.stacks if not test(stack)]
        return Profile(sum(stack.count for stack in kept), kept)


def load(path: Path) -> Profile:
    profile = Profile()
    if not path.exists():
        return profile
    for line in path.read_text().splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = [f for f in text.split(";") if not f.startswith("process ") and "(__doc__" not in f]
        parsed = [(m["name"], m["file"]) for m in map(FRAME.match, frames) if m]  # torn frames are dropped
        if not parsed:
            continue
        name, file = parsed[-1]
        stack = Stack(
            frozenset(n for n, _ in parsed), frozenset(f for _, f in parsed), f"{name} ({file})", int(count)
        )
        profile.stacks.append(stack)
        profile.total += stack.count
    return profile


def _on(stack: Stack, name: str) -> bool:
    """`name` is on the stack, as a function or as a method of any class (`Class.name`)."""
    return name in stack.names or any(frame.endswith("." + name) for frame in stack.names)


def has(*names: str) -> Test:
    return lambda stack: any(_on(stack, name) for name in names)


def has_all(*names: str) -> Test:
    return lambda stack: all(_on(stack, name) for name in names)


def in_package(prefix: str, within: str | None = None) -> Test:
    """A frame of a file under `prefix` is on the stack (below `within`, when given)."""
    return lambda stack: (
        any(f.startswith(prefix) for f in stack.files) and (within is None or _on(stack, within))
    )


def but_not(test: Test, *names: str) -> Test:
    return lambda stack: test(stack) and not any(_on(stack, name) for name in names)


def anything(stack: Stack) -> bool:
    return True


INDENT = "&nbsp;&nbsp;"
WSGI = "WSGIHandler.__call__"
WEBHOOK_STEPS: list[tuple[int, str, Test]] = [
    (
        0,
        "gunicorn threads outside Django (read the request, write the answer)",
        but_not(has("ThreadWorker.handle"), WSGI),
    ),
    (
        0,
        "gunicorn main thread and others (accept loop, worker heartbeat)",
        but_not(anything, "ThreadWorker.handle"),
    ),
    (0, "**Django: the whole request** (`WSGIHandler.__call__`)", has(WSGI)),
    (
        1,
        "importing modules (a recycled worker's first requests load the URLconf and every API module)",
        has_all(WSGI, IMPORTS),
    ),
    (
        1,
        "Django outside the view, imports excluded (request, middleware chain, response)",
        but_not(has(WSGI), "whatsapp_webhook", IMPORTS),
    ),
    (1, "**the view** (`apps/whatsapp/webhook.py` `_receive`)", has("_receive")),
    (2, "`delivery_load` + `delivery_parse` (JSON)", has("delivery_load", "delivery_parse")),
    (2, "`channels_addressed` (SELECT the channel)", has("channels_addressed")),
    (
        3,
        "of which the connection health check (`CONN_HEALTH_CHECKS`: `SELECT 1`)",
        has_all("channels_addressed", "close_if_health_check_failed"),
    ),
    (3, "of which decrypting the channel's three secrets (Fernet)", has_all("channels_addressed", "decrypt")),
    (2, "`matching_secret` (HMAC-SHA256 of the body)", has("matching_secret")),
    (2, "`webhook_delivery_store` (the transaction)", has("webhook_delivery_store")),
    (
        3,
        "`BEGIN` (psycopg sends it before the first statement)",
        has_all("webhook_delivery_store", "BaseConnection._start_query"),
    ),
    (
        3,
        "`SAVEPOINT` + `RELEASE SAVEPOINT` around the insert",
        has("BaseDatabaseWrapper.savepoint", "BaseDatabaseWrapper.savepoint_commit"),
    ),
    (3, "`INSERT` of the message", has_all("inbound_store", "SQLInsertCompiler.execute_sql")),
    (3, "reading back the ids of the new rows", has_all("inbound_store", "QuerySet._fetch_all")),
    (3, "`COMMIT`", has_all("webhook_delivery_store", "BaseDatabaseWrapper.commit")),
    (
        3,
        "enqueue after commit (Celery `Task.delay`: kombu, Redis `LPUSH`)",
        has_all("webhook_delivery_store", "Task.delay"),
    ),
    (2, "`JsonResponse`", has_all("_receive", "JsonResponse.__init__")),
    (0, "anywhere: blocked on PostgreSQL (psycopg `Connection.wait`)", has("Connection.wait")),
    (0, "anywhere: redis-py (the enqueue's round trip)", has("Redis.execute_command")),
]
LOOP_THREAD = ("AsyncToSync.main_wrap", "new_loop_wrap")  # async_to_sync runs the coroutine in a new thread
TASKS = ("inbound_message_process", "reply_generate", "message_send", "message_mark_read", "queue_sweep")
WORKER_STEPS: list[tuple[int, str, Test]] = [
    (0, "**task `inbound.message_process`** (contact, conversation, rules)", has("inbound_message_process")),
    (
        1,
        "`live_publish` (dashboard event: channels_redis `group_send` through `async_to_sync`)",
        has_all("inbound_message_process", "live_publish"),
    ),
    (0, "**task `llm.reply_generate`**", has("reply_generate")),
    (1, "`generate_reply` (apps/assistant/reply.py)", has("generate_reply")),
    (2, "`knowledge.retrieve` (the knowledge base search)", has_all("generate_reply", "retrieve")),
    (2, "the LLM call through litellm (stand-in answers at once)", in_package("litellm/", "generate_reply")),
    (2, "`_usage_record` (the usage row)", has("_usage_record")),
    (1, "history for the prompt (`_turns`)", has("_turns")),
    (1, "`message_enqueue` (queue the reply)", has_all("reply_generate", "message_enqueue")),
    (0, "**task `outbound.message_send`**", has("message_send")),
    (
        1,
        "loading the message (`select_related(...).first()`: compiling its ORDER BY)",
        has_all("message_send", "get_order_by"),
    ),
    (1, "the Graph API call (httpx)", in_package("httpx/", "message_send")),
    (0, "task `outbound.mark_read`", has("message_mark_read")),
    (0, "task `default.queue_sweep` (beat, every 30 s)", has("queue_sweep")),
    (
        0,
        "`live_publish`'s own thread (asgiref `async_to_sync`: a new event loop, channels_redis `group_send`, "
        "a new Redis connection)",
        but_not(has(*LOOP_THREAD), *TASKS),
    ),
    (0, "Celery outside the tasks (consume, ack, trace)", but_not(anything, *TASKS, *LOOP_THREAD)),
    (
        0,
        "anywhere: opening or closing a PostgreSQL connection (Celery's Django fixup closes it around every task)",
        has("get_new_connection", "_close_database"),
    ),
    (0, "anywhere: Django compiling SQL (`SQLCompiler.as_sql`)", has("SQLCompiler.as_sql")),
    (0, "anywhere: psycopg (send, wait, read)", in_package("psycopg/")),
    (0, "anywhere: `live_publish` (in the task and in its own thread)", has("live_publish", *LOOP_THREAD)),
    (0, "anywhere: enqueueing a task (kombu `Producer.publish`)", has("Producer.publish")),
    (0, "anywhere: importing modules", has(IMPORTS)),
]


def component(leaf: str) -> str:
    match = FRAME.match(leaf)
    path = match["file"] if match else leaf
    parts = path.split("/")
    if parts[0] == "django" and len(parts) > 2:
        return "django." + parts[1]
    if parts[0] in ("apps", "chatbot"):
        return "our code (" + "/".join(parts[:2]).removesuffix(".py") + ")"
    if parts[0].startswith("<frozen"):
        return "imports"
    return parts[0].removesuffix(".py")


def top(counter: Counter[str], total: int, n: int) -> list[str]:
    return [f"| {100 * count / total:.1f}% | `{name}` |" for name, count in counter.most_common(n)]


def steps_table(steps: list[tuple[int, str, Test]], columns: list[tuple[str, Profile]]) -> list[str]:
    lines = [
        "| step | " + " | ".join(name for name, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for depth, label, test in steps:
        cells = " | ".join(f"{profile.share(test):.1f}%" for _, profile in columns)
        lines.append(f"| {INDENT * depth}{label} | {cells} |")
    return lines


def hotspots(gil: Profile, active: Profile, gil_note: str) -> list[str]:
    packages: Counter[str] = Counter()
    for leaf, count in gil.leaves().items():
        packages[component(leaf)] += count
    return [
        f"Functions with the most samples of their own (the frame on top of the stack), holding the GIL{gil_note}:",
        "",
        "| self | function (file) |",
        "|---|---|",
        *top(gil.leaves(), gil.total, 15),
        "",
        f"The same by package{gil_note}:",
        "",
        "| self | package |",
        "|---|---|",
        *top(packages, gil.total, 12),
        "",
        "Functions with the most samples of their own, active threads (waits included):",
        "",
        "| self | function (file) |",
        "|---|---|",
        *top(active.leaves(), active.total, 10),
    ]


READING = (
    "Share of the samples in which each step is on the stack (steps nest: a step's share includes its "
    "sub-steps). *Active* also counts a thread blocked on a PostgreSQL, Redis or HTTP answer, so it tells "
    "where the time goes; *GIL* counts only the thread running Python, so it tells where the CPU goes."
)


def webhook(args: argparse.Namespace, active: Profile, gil: Profile) -> list[str]:
    warm = gil.without(has(IMPORTS))  # without a recycled worker's start-up
    return [
        "## Where a webhook request goes (py-spy)",
        "",
        f"A third wrk pass ({args.seconds} s, {args.connections} connections, new wamids) with py-spy sampling "
        "every gunicorn process 100 times a second (`--nonblocking`): "
        f"{args.rps} req/s under the profilers (unprofiled: {args.unprofiled_rps} req/s). "
        f"{active.total:,} samples of active threads, {gil.total:,} of the thread holding the GIL. "
        "Flamegraph of the active threads: [webhook-profile.svg](benchmarks/webhook-profile.svg) "
        "(open it in a browser to zoom and search).",
        "",
        READING,
        "",
        *steps_table(
            WEBHOOK_STEPS,
            [("active threads", active), ("holding the GIL", gil), ("GIL, worker start-up excluded", warm)],
        ),
        "",
        *hotspots(warm, active, ", a recycled worker's start-up (imports) excluded"),
    ]


def worker(args: argparse.Namespace, active: Profile, gil: Profile) -> list[str]:
    return [
        "## Where the Celery worker's time goes (py-spy)",
        "",
        f"{args.title} {active.total:,} samples of active threads, {gil.total:,} of the thread holding the "
        "GIL. Flamegraph of the active threads: [worker-profile.svg](benchmarks/worker-profile.svg).",
        "",
        READING,
        "",
        *steps_table(WORKER_STEPS, [("active threads", active), ("holding the GIL", gil)]),
        "",
        *hotspots(gil, active, ""),
    ]


def summarise(kind: str, active_path: Path, gil_path: Path, **options: str) -> str:
    args = argparse.Namespace(**options)
    report = webhook if kind == "webhook" else worker
    return "\n".join(report(args, load(active_path), load(gil_path))) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=("webhook", "worker"))
    parser.add_argument("active", type=Path)
    parser.add_argument("gil", type=Path)
    parser.add_argument("--rps", default="?")
    parser.add_argument("--unprofiled-rps", default="?")
    parser.add_argument("--seconds", default="?")
    parser.add_argument("--connections", default="?")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    options = {k: v for k, v in vars(args).items() if k not in ("kind", "active", "gil")}
    print(summarise(args.kind, args.active, args.gil, **options), end="")


if __name__ == "__main__":
    main()
