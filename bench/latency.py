"""End-to-end latency: a customer's message posted to the webhook -> the bot's reply at the Graph API.

gunicorn serves the webhook, one Celery worker runs inbound -> llm -> outbound, the LLM stand-in
answers at once and the debounce is 0. Each message comes from a new customer (no per-customer pace),
sent one after another at --interval seconds apart. Needs PostgreSQL and Redis on localhost.

Usage: python bench/latency.py [--count 200] [--interval 0.05]
Writes bench/results/latency.md (bench/report.py assembles docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from outbound import QUEUE_KEYS, stop_workers  # noqa: E402

DB = "bench_latency"
PORT = 8092
SECRET = "bench-latency-secret"  # noqa: S105 - a stand-in's secret
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
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
    }
)
os.environ.setdefault("FERNET_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--logs", default=tempfile.gettempdir())
    args = parser.parse_args()

    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)  # noqa: S603,S607
    import django

    django.setup()
    import httpx
    import redis
    from django.core.management import call_command

    from apps.accounts.models import Workspace
    from apps.assistant.models import AssistantSettings, ProviderConfig
    from apps.conversations.models import ConversationSettings
    from apps.whatsapp.models import Channel
    from standins.graph import GraphStandIn
    from standins.llm import LLMStandIn

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*QUEUE_KEYS)
    workspace = Workspace.objects.create(name="Latency", slug="latency")
    Channel.objects.create(
        workspace=workspace,
        kind="cloud",
        phone_number_id="lat-1",
        access_token="bench",  # noqa: S106 - the stand-in accepts any token
        app_secret=SECRET,
    )
    ConversationSettings.objects.update_or_create(
        workspace=workspace, defaults={"recipient_interval_seconds": 0.001}
    )
    procs: list[subprocess.Popen[bytes]] = []
    with GraphStandIn() as graph, LLMStandIn() as llm:
        llm.answer = "Respuesta inmediata."
        ProviderConfig.objects.create(
            workspace=workspace,
            provider="openai_compatible",
            enabled=True,
            model="bench-model",
            base_url=llm.openai_base,
            api_key="bench-key",
        )
        AssistantSettings.objects.update_or_create(
            workspace=workspace, defaults={"fallback_order": ["openai_compatible"], "debounce_seconds": 0}
        )
        env = {**os.environ, "WHATSAPP_GRAPH_URL": graph.url}
        web_log = (Path(args.logs) / "bench-latency-web.log").open("w")
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    str(Path(sys.executable).parent / "gunicorn"),
                    "chatbot.wsgi",
                    "--config",
                    "chatbot/gunicorn.conf.py",
                ],
                cwd=ROOT,
                env={**env, "WEB_PORT": str(PORT), "WEB_WORKERS": "2", "WEB_THREADS": "8"},
                stdout=web_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        worker_log_path = Path(args.logs) / "bench-latency-worker.log"
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "celery_app",
                    "worker",
                    "-Q",
                    "inbound,llm,outbound,default",
                    "-P",
                    "threads",
                    "-c",
                    "16",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=worker_log_path.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        try:
            deadline = time.monotonic() + 120
            while "ready." not in worker_log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            graph.configure_webhooks(f"http://127.0.0.1:{PORT}/webhooks/whatsapp/", SECRET, statuses=())
            # One warm-up message, not measured (first imports, connections).
            graph.inject_inbound("lat-1", "5219990000000", "hola")
            while not graph.sent and time.monotonic() < deadline:
                time.sleep(0.05)
            graph.reset()
            graph.configure_webhooks(f"http://127.0.0.1:{PORT}/webhooks/whatsapp/", SECRET, statuses=())
            started: dict[str, float] = {}
            for n in range(args.count):
                wa_id = f"52188{n:08d}"
                started[wa_id] = time.time()
                delivery = graph.inject_inbound("lat-1", wa_id, f"¿Tienen la talla {n}?")
                if delivery.status_code != 200:
                    raise SystemExit(f"webhook refused: {delivery}")
                time.sleep(args.interval)
            deadline = time.monotonic() + 120
            while len(graph.sent) < args.count and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop_workers(procs)
        latencies = [(r["received_at"] - started[r["to"]]) * 1000 for r in graph.sent if r["to"] in started]

    lines = [
        "## End-to-end latency: webhook arrival -> reply sent to the Graph API",
        "",
        f"`python bench/latency.py --count {args.count} --interval {args.interval}`: gunicorn (2 workers x 8 "
        "threads), one Celery worker (`-P threads -c 16`, all queues), LLM stand-in answering at once, "
        f"debounce 0, one new customer every {args.interval * 1000:.0f} ms (the stand-in signs and posts each "
        "delivery; the clock starts just before the POST).",
        "",
        "| messages | answered | p50 ms | p95 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|---|---|---|",
        f"| {args.count} | {len(latencies)} | {percentile(latencies, 50):.0f} | {percentile(latencies, 95):.0f} "
        f"| {percentile(latencies, 99):.0f} | {max(latencies):.0f} | {statistics.mean(latencies):.0f} |",
    ]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
