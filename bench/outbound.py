"""Outbound throughput: N queued messages sent by real Celery workers against the Graph stand-in.

For each rate, a channel is configured at that rate and the stand-in enforces the same limit
(answering 130429 above it). Reports the achieved rate (first to last accepted send), its error
from the target, the busiest 1 s window and the number of 130429 answers.
Needs PostgreSQL and Redis on localhost.

Usage: python bench/outbound.py [--count 10000] [--rates 80,1000] [--workers 2] [--concurrency 32]
Writes bench/results/outbound.md (bench/report.py assembles docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from memory import Sampler, postmaster_pid  # noqa: E402

DB = os.environ.get("BENCH_OUTBOUND_DB", "bench_outbound")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": "/dev/null",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdef",
        "METRICS_TOKEN": "bench-only-metrics-token-0123",
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
    }
)
os.environ.setdefault("FERNET_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=")
STARTUP_GRACE = 150.0  # seconds allowed for the workers to start before the first send
QUEUE_KEYS = ("inbound", "llm", "outbound", "default", "unacked", "unacked_index", "unacked_mutex")


def fresh_database() -> None:
    subprocess.run(  # noqa: S603
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {DB}"],  # noqa: S607
        check=True,
    )
    subprocess.run(  # noqa: S603
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {DB}"],  # noqa: S607
        check=True,
    )


def start_worker(
    queues: str, concurrency: int, graph_url: str, logs: Path, name: str
) -> subprocess.Popen[bytes]:
    """One Celery worker (threads pool) on `queues`, its output in logs/bench-<name>.log."""
    log = (logs / f"bench-{name}.log").open("w")
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "-Q",
            queues,
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
            "-n",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env={**os.environ, "WHATSAPP_GRAPH_URL": graph_url},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_workers(count: int, concurrency: int, graph_url: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    return [start_worker("outbound", concurrency, graph_url, logs, f"bench{n}") for n in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def busiest_second(times: list[float]) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process used so far: per message, a figure the machine's load skews little."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_rate(
    rate: int, count: int, args: argparse.Namespace, standin: object, sampler: Sampler
) -> dict[str, float]:
    import redis
    from django.utils import timezone

    from apps.accounts.models import Workspace
    from apps.conversations.models import Contact, Conversation, ConversationSettings, Message
    from apps.conversations.tasks import number_send
    from apps.whatsapp.models import Channel

    sampler.mark("setup")
    tag = uuid.uuid4().hex[:8]
    workspace = Workspace.objects.create(name=f"Bench {rate}", slug=f"bench-{rate}-{tag}")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="cloud",
        phone_number_id=f"bench-{tag}",
        access_token="bench",  # noqa: S106 - the stand-in accepts any token
        send_rate=rate,
    )
    ConversationSettings.objects.update_or_create(
        workspace=workspace, defaults={"recipient_interval_seconds": 0.001, "recipient_burst": 10}
    )
    # One conversation per message: the queue keeps each conversation in order, so this measures the
    # number's rate, not the per-customer pace.
    contacts = Contact.objects.bulk_create(
        [Contact(workspace=workspace, wa_id=f"52{n:010d}") for n in range(count)], batch_size=2000
    )
    now = timezone.now()
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(workspace=workspace, channel=channel, contact=c, last_inbound_at=now)
            for c in contacts
        ],
        batch_size=2000,
    )
    Message.objects.bulk_create(
        [
            Message(
                workspace=workspace,
                channel=channel,
                conversation=conv,
                contact=conv.contact,
                direction=Message.Direction.OUTBOUND,
                author=Message.Author.AGENT,
                type="text",
                body=f"bench {n}",
                payload={"body": f"bench {n}", "preview_url": False},
                status=Message.Status.QUEUED,
                send_state=Message.SendState.PENDING,
                max_attempts=10,
            )
            for n, conv in enumerate(conversations)
        ],
        batch_size=2000,
    )
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*QUEUE_KEYS)
    number_send.delay(channel.pk)  # what message_enqueue does after commit: wake the number's sender
    standin.reset()  # type: ignore[attr-defined]
    standin.set_rate_limit(rate)  # type: ignore[attr-defined]
    limited = [0]
    within = standin._within_rate_limit  # type: ignore[attr-defined]

    def counting(phone_number_id: str, now: float) -> bool:
        ok = within(phone_number_id, now)
        if not ok:
            limited[0] += 1
        return bool(ok)

    standin._within_rate_limit = counting  # type: ignore[attr-defined]
    procs = start_workers(args.workers, args.concurrency, standin.url, Path(args.logs))  # type: ignore[attr-defined]
    sampler.mark(f"{rate:,} msg/s")
    for proc in procs:
        sampler.watch("Celery worker (outbound)/Celery worker child", proc.pid)
    # Stop when everything is sent, or when nothing more has been sent for 30 s (the first send may
    # take longer: on a loaded machine a worker can spend a minute importing before it starts).
    last_count, last_progress = 0, time.monotonic() + STARTUP_GRACE
    cpu_at_first: float | None = None
    sent_at_first = 0
    try:
        while time.monotonic() - last_progress < 30:
            done = len(standin.sent)  # type: ignore[attr-defined]
            if done and cpu_at_first is None:
                cpu_at_first, sent_at_first = sum(_cpu_seconds(proc.pid) for proc in procs), done
            if done >= count:
                break
            if done > last_count:
                last_count, last_progress = done, time.monotonic()
            time.sleep(0.5)
        cpu_sending = sum(_cpu_seconds(proc.pid) for proc in procs) - (cpu_at_first or 0.0)
    finally:
        stop_workers(procs)
    times = sorted(record["received_at"] for record in standin.sent)  # type: ignore[attr-defined]
    sent_rows = Message.objects.filter(channel=channel, send_state=Message.SendState.SENT).count()
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {
        "rate": rate,
        "count": count,
        "sent": len(times),
        "sent_rows": sent_rows,
        "duplicates": len(times) - len({r["to"] for r in standin.sent}),  # type: ignore[attr-defined]
        "achieved": achieved,
        "error_pct": 100.0 * (achieved - rate) / rate,
        "busiest": busiest_second(times),
        "rate_limited": limited[0],
        "seconds": times[-1] - times[0] if times else 0.0,
        "worker_cpu_ms": 1000.0 * cpu_sending / max(len(times) - sent_at_first, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rates", default="80,1000")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=32, help="threads per worker")
    parser.add_argument("--logs", default=tempfile.gettempdir())
    args = parser.parse_args()

    fresh_database()
    import django

    django.setup()
    from django.core.management import call_command

    from standins.graph import GraphStandIn

    call_command("migrate", verbosity=0)
    import redis

    results = []
    redis_pid = int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["process_id"])
    sampler = Sampler(
        f"python bench/outbound.py --count {args.count} --rates {args.rates}",
        {
            "bench driver: Graph stand-in": os.getpid(),
            f"PostgreSQL backends ({DB})": f"cmd:postgres {DB}",
            "PostgreSQL (whole server, summed)": f"tree:{postmaster_pid()}",
            "Redis (whole server)": redis_pid,
        },
    ).start()
    try:
        with GraphStandIn() as standin:
            for rate in [int(r) for r in args.rates.split(",")]:
                result = run_rate(rate, args.count, args, standin, sampler)
                print(result, flush=True)
                results.append(result)
    finally:
        sampler.mark("shutdown")
        sampler.stop(ROOT / "bench" / "results" / "memory-outbound.json")

    lines = [
        "## Outbound: queued messages sent by real workers",
        "",
        f"`python bench/outbound.py --count {args.count} --rates {args.rates} --workers {args.workers} "
        f"--concurrency {args.concurrency}`: {args.count} messages queued (one conversation each), "
        f"{args.workers} worker processes x {args.concurrency} threads (`-P threads`, queue `outbound`), "
        "the channel's `send_rate` set to the target and the Graph stand-in limiting the number to the "
        "same rate (130429 above it). Achieved rate = accepted sends / (last - first accepted send). "
        "Worker CPU = the worker processes' CPU time from the first accepted send on, per later send.",
        "",
        "| target msg/s | messages | sent (stand-in / rows) | duplicates | achieved msg/s | error from target "
        "| busiest 1 s window | 130429 answers | duration s | worker CPU ms/msg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['rate']} | {r['count']} | {r['sent']} / {r['sent_rows']} | {r['duplicates']} "
            f"| {r['achieved']:.1f} | {r['error_pct']:+.1f}% | {r['busiest']} | {r['rate_limited']} "
            f"| {r['seconds']:.1f} | {r['worker_cpu_ms']:.2f} |"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "outbound.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
