"""CPU and SQL statements per customer message in the two pipeline tasks, measured in one process.

Stores a message as the webhook does, then runs `inbound.message_process` and `llm.reply_generate` in
this process against PostgreSQL and Redis (the LLM stand-in answers at once, in another process, so its
CPU is not counted); Celery publishing is replaced by a counter. `time.process_time()` is far less
sensitive to a loaded machine than end-to-end figures. The first round (new conversations) and the
first 20 customers of the second are not counted.

Usage: python bench/pipeline_cpu.py [customers, default 100]   (BENCH_PROBE_DB, default bench_probe)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

sys.path.insert(0, os.getcwd())
DB = os.environ.get("BENCH_PROBE_DB", "bench_probe")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "DEBUG": "0",
        "METRICS_TOKEN": "bench-only-metrics-token-0123",
        "SECURE_SSL_REDIRECT": "0",
        "ENV_FILE": "/dev/null",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdef",
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",
        "INBOUND_REPLY_RATE": "100000/60",
        "FERNET_KEYS": "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=",
    }
)
STANDIN = (
    "import sys, time; sys.path.insert(0, '.')\n"
    "from standins.llm import LLMStandIn\n"
    "with LLMStandIn() as llm:\n"
    "    llm.echo(); print(llm.openai_base, flush=True); time.sleep(3600)"
)


@contextlib.contextmanager
def llm_standin() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", STANDIN], stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        yield (proc.stdout.readline() if proc.stdout else "").strip()
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)  # noqa: S603,S607
    import django

    django.setup()
    from celery.app.task import Task
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from apps.accounts.models import Workspace
    from apps.assistant.models import AssistantSettings, ProviderConfig
    from apps.conversations import tasks
    from apps.conversations.events import InboundMessage
    from apps.conversations.models import ConversationSettings, Message
    from apps.conversations.services.ingest import inbound_store
    from apps.whatsapp.models import Channel

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(name="Probe", slug="probe")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="cloud",
        phone_number_id="probe-1",
        access_token="t",  # noqa: S106
        app_secret="s",  # noqa: S106
    )
    ConversationSettings.objects.update_or_create(
        workspace=workspace, defaults={"recipient_interval_seconds": 0.001}
    )
    published: Counter[str] = Counter()

    def publish(self: Task[..., Any], *args: Any, **kwargs: Any) -> None:
        published[self.name] += 1

    Task.apply_async = publish  # type: ignore[method-assign,assignment]
    fields = {f.name for f in dataclasses.fields(InboundMessage)}

    def reply_generate(message_id: int) -> None:
        tasks.reply_generate(Message.objects.get(pk=message_id).conversation_id, message_id)

    def store(customer: int, turn: int) -> int:
        item: dict[str, Any] = {
            "type": "text",
            "body": f"hola, ¿tienen la talla {customer % 40 + 20}? ref {turn}",
            "raw": {},
            "wamid": f"wamid.probe.{customer}.{turn}",
            "from_wa_id": f"52{customer:08d}",
            "from_name": "",
            "timestamp": timezone.now(),
        }
        with transaction.atomic():
            return inbound_store(
                channel=channel, messages=[InboundMessage(**{k: v for k, v in item.items() if k in fields})]
            )[0]

    totals = {"inbound.message_process": [0.0, 0, 0], "llm.reply_generate": [0.0, 0, 0]}
    with llm_standin() as base:
        ProviderConfig.objects.create(
            workspace=workspace,
            provider="openai_compatible",
            enabled=True,
            model="bench-model",
            base_url=base,
            api_key="bench-key",
        )
        AssistantSettings.objects.update_or_create(
            workspace=workspace, defaults={"fallback_order": ["openai_compatible"], "debounce_seconds": 0}
        )
        for turn in range(2):
            for customer in range(customers):
                message_id = store(customer, turn)
                steps: tuple[tuple[str, Callable[[], object]], ...] = (
                    ("inbound.message_process", partial(tasks.inbound_message_process, message_id)),
                    ("llm.reply_generate", partial(reply_generate, message_id)),
                )
                for name, step in steps:
                    with CaptureQueriesContext(connection) as queries:
                        started = time.process_time()
                        step()
                        spent = time.process_time() - started
                    if turn == 1 and customer >= 20:
                        totals[name][0] += spent
                        totals[name][1] += len(queries.captured_queries)
                        totals[name][2] += 1
    for name, (cpu, statements, count) in totals.items():
        print(
            f"{name}: {1000 * cpu / count:.1f} ms CPU, {statements / count:.1f} statements per message ({count})"
        )
    print("tasks published:", dict(published))


if __name__ == "__main__":
    main()
