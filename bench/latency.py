"""End-to-end latency under N concurrent conversations: a customer's message POSTed to the webhook ->
the bot's reply arriving at the Graph API stand-in, for each N in --levels (10, 100, 1,000 by default).

A real deployment's processes: gunicorn (the webhook), Celery workers (--worker-processes, one per CPU
by default: 2) running inbound -> llm -> outbound, Celery beat (the sweeper), PostgreSQL and Redis; the LLM stand-in answers at once (echoing the
question, so each reply names the message it answers) and the debounce is 0.

At each level N customers chat at the same time, each in its own conversation: a customer POSTs a
signed message to the webhook, waits for the bot's reply to reach the Graph stand-in, waits a think time
(uniform in 0.5-1.5 x --think), then sends the next, for `rounds` messages; rounds = max(--min-rounds,
ceil(--count / N)). Customers start spread over the first --think seconds. The clock runs from just before
the POST to the moment the stand-in receives the reply (one process, one monotonic clock). Webhook POSTs
share a pool of --connections keep-alive connections (Meta's deliveries do not open one per customer);
waiting for a free connection counts in the latency.

Memory (RSS/PSS) and CPU of every process are sampled meanwhile (bench/memory.py).
Needs PostgreSQL and Redis on localhost.

Usage: python bench/latency.py [--levels 10,100,1000] [--count 500] [--think 5.0] [--worker-processes 2]
Writes bench/results/latency.md, latency.json and memory-latency.json (bench/report.py assembles
docs/benchmarks.md and the plots).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from memory import Sampler, postmaster_pid  # noqa: E402
from outbound import QUEUE_KEYS, stop_workers  # noqa: E402
from profile_summary import summarise  # noqa: E402

DB = os.environ.get("BENCH_LATENCY_DB", "bench_latency")
# The llm worker's database settings in docker-compose.yml (BENCH_LLM_WORKER_POOL=0: the old ones).
LLM_WORKER_ENV = (
    {"DB_POOL_SIZE": "16"}
    if os.environ.get("BENCH_LLM_WORKER_POOL", "1") != "0"
    else {"DB_CONN_MAX_AGE": "0"}
)
PORT = int(os.environ.get("BENCH_LATENCY_PORT", "8092"))
PHONE_NUMBER_ID = "lat-1"
SECRET = "bench-latency-secret"  # noqa: S105 - a stand-in's secret
REF = re.compile(r"ref (c\d+-\d+-\d+)")
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
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",  # the LLM stand-in the workspace points at
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        # The product answers one customer at most 6 times a minute (INBOUND_REPLY_RATE, default 6/60) and
        # holds later turns back; these customers write every second or so, so the limit is lifted here.
        "INBOUND_REPLY_RATE": "100000/60",
    }
)
os.environ.setdefault("FERNET_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def delivery(wa_id: str, text: str) -> bytes:
    """Meta's webhook for one customer text message (what the Graph stand-in's inject_inbound posts)."""
    message = {
        "from": wa_id,
        "id": f"wamid.lat.{os.urandom(12).hex()}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": ""}, "wa_id": wa_id}],
        "messages": [message],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA-BENCH", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "celery_app", *args]


async def run_level(
    conversations: int, rounds: int, args: argparse.Namespace, graph: Any, level_id: int
) -> dict[str, Any]:
    """N customers chatting at once; returns every measured message and what went wrong."""
    # aiohttp, not httpx: httpx's async client costs several times more CPU per request and its pool slows
    # down with many waiting requests; at 1,000 customers it, not the server, set the latency.
    import aiohttp

    from apps.whatsapp.signature import sign

    loop = asyncio.get_running_loop()
    pending: dict[str, tuple[str, asyncio.Future[float]]] = {}  # wa_id -> (ref awaited, its reply time)
    stray = [0]

    def resolve(to: str, text: str, at: float) -> None:
        entry = pending.get(to)
        refs = REF.findall(text)
        if entry is None or entry[1].done() or (refs and refs[-1] != entry[0]):
            stray[0] += 1  # a reply to a message that already timed out, or a second send
            return
        entry[1].set_result(at)

    def on_send(to: str, text: str, at: float) -> None:  # called from the stand-in's threads
        loop.call_soon_threadsafe(resolve, to, text, at)

    graph.on_send = on_send
    url = f"http://127.0.0.1:{PORT}/webhooks/whatsapp/"
    samples: list[list[float]] = []  # [sent at (s from the level's start), latency ms, webhook answer ms]
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.monotonic()

        async def post(body: bytes) -> int | None:
            """POST like Meta: the same delivery again when the connection fails (gunicorn closes idle
            keep-alive connections after 5 s, racing with their reuse); the wamid makes it idempotent."""
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}
            for attempt in range(3):
                try:
                    async with session.post(url, data=body, headers=headers) as answer:
                        await answer.read()
                        return answer.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[
                        f"webhook {type(exc).__name__}"
                        + (" (given up)" if attempt == 2 else ", posted again")
                    ] += 1
            return None

        async def customer(n: int) -> None:
            rng = random.Random(n)  # noqa: S311 - think times, not secrets
            wa_id = f"52{level_id:03d}{n:08d}"
            await asyncio.sleep(rng.uniform(0, args.think or 0.1))
            for r in range(rounds):
                ref = f"c{conversations}-{n}-{r}"
                body = delivery(wa_id, f"¿Tienen la talla {r % 40 + 20} en azul? ref {ref}")
                future: asyncio.Future[float] = loop.create_future()
                pending[wa_id] = (ref, future)
                sent = time.monotonic()
                status = await post(body)
                if status is None:
                    continue
                acked = time.monotonic()
                if status != 200:
                    errors[f"webhook HTTP {status}"] += 1
                    continue
                try:
                    replied = await asyncio.wait_for(future, args.timeout)
                except TimeoutError:
                    errors[f"no reply within {args.timeout:.0f} s"] += 1
                    continue
                samples.append(
                    [
                        round(sent - began, 3),
                        round((replied - sent) * 1000, 1),
                        round((acked - sent) * 1000, 1),
                    ]
                )
                if args.think:
                    await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))

        await asyncio.gather(*(customer(n) for n in range(conversations)))
        ended = time.monotonic()
    graph.on_send = None
    latencies = [s[1] for s in samples]
    replies_at = [s[0] + s[1] / 1000 for s in samples]
    span = (max(replies_at) - min(s[0] for s in samples)) if samples else 0.0
    return {
        "conversations": conversations,
        "rounds": rounds,
        "messages": conversations * rounds,
        "answered": len(samples),
        "errors": dict(errors),
        "stray_replies": stray[0],
        "seconds": round(ended - began, 1),
        "throughput": len(samples) / span if span else 0.0,
        "p50": percentile(latencies, 50) if latencies else None,
        "p95": percentile(latencies, 95) if latencies else None,
        "p99": percentile(latencies, 99) if latencies else None,
        "max": max(latencies) if latencies else None,
        "mean": statistics.mean(latencies) if latencies else None,
        "webhook_p50": percentile([s[2] for s in samples], 50) if samples else None,
        "samples": samples,
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(args: argparse.Namespace, levels: list[dict[str, Any]], command: str) -> list[str]:
    lines = [
        "## End-to-end latency: webhook -> bot reply at the Graph API, 10 to 1,000 concurrent conversations",
        "",
        f"`{command}`: gunicorn (2 workers x 8 threads), {args.worker_processes} Celery worker process(es) "
        f"(`-P threads -c {args.worker_concurrency}` each, queues inbound, llm, outbound, default), Celery beat, the LLM stand-in "
        "answering at once, debounce 0. At each level N customers chat at once, each in its own conversation: "
        "POST a signed message, wait for the bot's reply at the Graph stand-in, think "
        f"{args.think * 0.5:g}-{args.think * 1.5:g} s, send the next; each customer sends "
        f"max({args.min_rounds}, {args.count} / N) messages (`INBOUND_REPLY_RATE` lifted: by default a customer "
        "gets at most 6 bot replies a minute). Latency = POST sent -> reply received by the "
        f"stand-in. Webhook POSTs share {args.connections} keep-alive connections; throughput = replies / "
        "(last reply - first POST).",
        "",
        "| concurrent conversations | messages | answered | p50 ms | p95 ms | p99 ms | max ms | mean ms "
        "| webhook answer p50 ms | replies/s | errors, retried POSTs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        errors = ", ".join(f"{k}: {v}" for k, v in level["errors"].items()) or "0"
        lines.append(
            f"| {level['conversations']:,} | {level['messages']:,} | {level['answered']:,} | {fmt(level['p50'])} "
            f"| {fmt(level['p95'])} | {fmt(level['p99'])} | {fmt(level['max'])} | {fmt(level['mean'])} "
            f"| {fmt(level['webhook_p50'])} | {level['throughput']:.1f} | {errors} |"
        )
    peaks = ", ".join(
        f"{level['conversations']:,}: {level.get('llm_peak_in_flight', '-')}" for level in levels
    )
    lines += [
        "",
        f"This run: worker layout `{args.layout}`, the LLM answering in {args.llm_latency:g} s, debounce "
        f"{'as shipped (REPLY_FIRST_WAIT, workspace debounce)' if args.default_debounce else '0'}; "
        f"LLM calls in flight at the peak (per level): {peaks}.",
    ]
    return lines


def profile_start(pid: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on the Celery worker until profile_stop(): raw stacks of the threads holding the GIL and of
    every active thread, and a flamegraph of the active ones."""
    spy = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--nonblocking",
        "--rate",
        "100",
    ]
    results, plots = ROOT / "bench" / "results", ROOT / "docs" / "benchmarks"
    plots.mkdir(parents=True, exist_ok=True)
    outputs = [
        ["--gil", "--format", "raw", "-o", str(results / "worker-profile-gil.txt")],
        ["--format", "raw", "-o", str(results / "worker-profile.txt")],
        ["--format", "flamegraph", "-o", str(plots / "worker-profile.svg")],
    ]
    return [
        start([*spy, *extra], dict(os.environ), logs / f"bench-py-spy-worker-{n}.log")
        for n, extra in enumerate(outputs)
    ]


def profile_stop(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    for spy in spies:
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()


def wait_ready(worker_log: Path, deadline: float) -> None:
    import httpx

    while "ready." not in worker_log.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"the Celery worker did not start: see {worker_log}")
        time.sleep(0.2)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="10,100,1000", help="concurrent conversations, comma-separated")
    parser.add_argument("--count", type=int, default=500, help="at least this many messages per level")
    parser.add_argument("--min-rounds", type=int, default=2, help="at least this many messages per customer")
    parser.add_argument(
        "--think",
        type=float,
        default=5.0,
        help="mean seconds a customer takes to read and type the next message",
    )
    parser.add_argument("--connections", type=int, default=64, help="webhook keep-alive connections")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one reply")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="threads per Celery worker process")
    parser.add_argument("--worker-processes", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--profile-level",
        type=int,
        default=100,
        help="py-spy the Celery worker during this level (0: do not)",
    )
    parser.add_argument(
        "--layout",
        choices=("bench", "shipped"),
        default="bench",
        help="bench: --worker-processes x (-P threads -c --worker-concurrency) on every queue; shipped: "
        "docker-compose's workers (inbound, outbound: threads x 8; llm: threads x 100; default)",
    )
    parser.add_argument("--llm-latency", type=float, default=0.0, help="seconds every LLM answer takes")
    parser.add_argument(
        "--default-debounce",
        action="store_true",
        help="keep the workspace's debounce and REPLY_FIRST_WAIT as shipped (else the debounce is 0)",
    )
    parser.add_argument("--name", default="latency", help="results go to bench/results/<name>.md/.json")
    parser.add_argument("--logs", default=tempfile.gettempdir())
    args = parser.parse_args()
    command = "python bench/latency.py " + " ".join(sys.argv[1:])

    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)  # noqa: S603,S607
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from apps.accounts.models import Workspace
    from apps.assistant.models import AssistantSettings, ProviderConfig
    from apps.conversations.models import ConversationSettings
    from apps.whatsapp.models import Channel
    from standins.graph import GraphStandIn
    from standins.llm import LLMStandIn

    class RecordingGraph(GraphStandIn):
        """The Graph stand-in, telling `on_send(to, text, monotonic time)` of every accepted send."""

        on_send: Callable[[str, str, float], None] | None = None

        def _messages(self, phone_number_id: str, body: bytes) -> Any:
            received = time.monotonic()
            answer = super()._messages(phone_number_id, body)
            callback = self.on_send
            if answer.status == 200 and callback is not None:
                payload = json.loads(body)
                if payload.get("status") != "read":
                    callback(
                        str(payload.get("to")), str((payload.get("text") or {}).get("body", "")), received
                    )
            return answer

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*QUEUE_KEYS)
    workspace = Workspace.objects.create(name="Latency", slug="latency")
    Channel.objects.create(
        workspace=workspace,
        kind="cloud",
        phone_number_id=PHONE_NUMBER_ID,
        access_token="bench",  # noqa: S106 - the stand-in accepts any token
        app_secret=SECRET,
    )
    ConversationSettings.objects.update_or_create(
        workspace=workspace, defaults={"recipient_interval_seconds": 0.001}
    )
    logs = Path(args.logs)
    procs: list[subprocess.Popen[bytes]] = []
    levels: list[dict[str, Any]] = []
    with RecordingGraph() as graph, LLMStandIn() as llm:
        llm.echo()  # the reply repeats the question, so it names the message it answers
        llm.latency = args.llm_latency
        ProviderConfig.objects.create(
            workspace=workspace,
            provider="openai_compatible",
            enabled=True,
            model="bench-model",
            base_url=llm.openai_base,
            api_key="bench-key",
        )
        AssistantSettings.objects.update_or_create(
            workspace=workspace,
            defaults={"fallback_order": ["openai_compatible"]}
            | ({} if args.default_debounce else {"debounce_seconds": 0}),
        )
        env = {**os.environ, "WHATSAPP_GRAPH_URL": graph.url}
        web = start(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "chatbot.wsgi",
                "--config",
                "chatbot/gunicorn.conf.py",
            ],
            {**env, "WEB_PORT": str(PORT), "WEB_WORKERS": "2", "WEB_THREADS": "8"},
            logs / "bench-latency-web.log",
        )
        # One process per CPU: a Celery process runs Python on one core at a time (the GIL).
        layout: list[tuple[str, int, dict[str, str]]] = (
            [
                ("inbound", 8, {}),
                ("llm", int(os.environ.get("LLM_WORKER_THREADS", "100")), LLM_WORKER_ENV),
                ("outbound", 8, {}),
                ("default", 2, {}),
            ]
            if args.layout == "shipped"
            else [("inbound,llm,outbound,default", args.worker_concurrency, {})] * args.worker_processes
        )
        workers = [
            start(
                celery(
                    "worker",
                    "-n",
                    f"bench{n}@%h",
                    "-Q",
                    queues,
                    "-P",
                    "threads",
                    "-c",
                    str(threads),
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ),
                {**env, **extra},
                logs / f"bench-latency-worker{n}.log",
            )
            for n, (queues, threads, extra) in enumerate(layout)
        ]
        worker = workers[0]  # the one profiled
        beat = start(celery("beat", "-l", "WARNING"), env, logs / "bench-latency-beat.log")
        procs += [web, *workers, beat]
        sampler = Sampler(
            command,
            {
                "gunicorn master/gunicorn worker": web.pid,
                **{f"Celery worker {n}/Celery worker {n} child": w.pid for n, w in enumerate(workers)},
                "Celery beat": beat.pid,
                "bench driver: load generator + Graph and LLM stand-ins": os.getpid(),
                f"PostgreSQL backends ({DB})": f"cmd:postgres {DB}",
                "PostgreSQL (whole server, summed)": f"tree:{postmaster_pid()}",
                "Redis (whole server)": int(
                    redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["process_id"]
                ),
            },
        ).start()
        try:
            for n in range(len(workers)):
                wait_ready(logs / f"bench-latency-worker{n}.log", time.monotonic() + 300)
            graph.configure_webhooks(f"http://127.0.0.1:{PORT}/webhooks/whatsapp/", SECRET, statuses=())
            sampler.mark("warm-up")
            warm = argparse.Namespace(**{**vars(args), "think": 0.0})
            asyncio.run(run_level(8, 3, warm, graph, 0))  # first imports, connections: not measured
            for level_id, conversations in enumerate((int(n) for n in args.levels.split(",")), start=1):
                graph.reset()
                llm.reset()
                rounds = max(args.min_rounds, math.ceil(args.count / conversations))
                sampler.mark(f"{conversations:,} conversations")
                spies = profile_start(worker.pid, logs) if conversations == args.profile_level else []
                try:
                    result = asyncio.run(run_level(conversations, rounds, args, graph, level_id))
                finally:
                    profile_stop(spies)
                result["llm_peak_in_flight"] = llm.peak_in_flight
                levels.append(result)
                print(
                    {
                        k: (round(v, 1) if isinstance(v, float) else v)
                        for k, v in result.items()
                        if k != "samples"
                    },
                    flush=True,
                )
            sampler.mark("shutdown")
        finally:
            stop_workers(procs)
            sampler.stop(ROOT / "bench" / "results" / "memory-latency.json")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.json").write_text(
        json.dumps({"command": command, "args": vars(args), "levels": levels}, separators=(",", ":"))
    )
    if any(level["conversations"] == args.profile_level for level in levels):
        profiled = next(level for level in levels if level["conversations"] == args.profile_level)
        title = (
            f"The first Celery worker process (`-P threads -c {args.worker_concurrency}`) during the {args.profile_level:,}"
            f"-conversation level above ({profiled['seconds']:.0f} s, {profiled['throughput']:.1f} replies/s, "
            "under the profilers), py-spy sampling it 100 times a second (`--nonblocking`)."
        )
        (out / "worker-profile.md").write_text(
            summarise("worker", out / "worker-profile.txt", out / "worker-profile-gil.txt", title=title)
        )
    lines = report(args, levels, command)
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
