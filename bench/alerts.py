"""Alert rules per customer message: 50 rules of a workspace against a corpus of customer messages.

Measures, per message, (a) the matching alone (compiled rules, no I/O) and (b) the whole evaluation
as the inbound task runs it (`alerts_check`: the shared cache's rules version, matching, the
cool-down read and the alert's rows when a rule matches), in a transaction on PostgreSQL with Redis
as the cache. Reports the median, p90, p99 and max, and how many messages raised an alert.
Needs PostgreSQL and Redis on localhost; creates (and drops first) the database `bench_alerts`.

With `--sentiment N`, N of the keyword rules are sentiment rules instead (thresholds -0.2 to -0.6):
the text is then scored once per message, besides the matching.

Usage: python bench/alerts.py [--messages 2000] [--rules 50] [--sentiment 0]
Writes bench/results/alerts.md (alerts-sentiment.md with sentiment rules).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = os.environ.get("BENCH_ALERTS_DB", "bench_alerts")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
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

KEYWORDS = [
    "reembolso", "devolución", "devolver el dinero", "estafa", "abogado", "denuncia", "queja",
    "reclamación", "fatal", "horrible", "cancelar", "no funciona", "roto", "rota", "tarde",
    "refund", "scam", "lawyer", "complaint", "terrible", "broken", "cancel", "not working",
    "chargeback", "consumo", "hoja de reclamaciones", "urgente", "urgent", "nunca más", "never again",
]  # fmt: skip
PATTERNS = [
    r"pedido\s*#?\d{4,}", r"order\s*#?\d{4,}", r"\b\d{16}\b", r"[\w.]+@[\w.]+\.\w+",
    r"(?:llam|contact)\w* (?:a|al) (?:gerente|encargad[oa])", r"\b(?:iban|es\d{22})\b",
    r"factura\s+\w+", r"invoice\s+\w+", r"(?:muy|really)\s+(?:mal|bad)", r"\bno\s+(?:me\s+)?(?:llega|llegó)",
    r"\b(?:hoy|today)\b.*\b(?:urgente|urgent)\b", r"\bdni\b|\bnie\b", r"\+?\d{2,3}[ -]?\d{3}[ -]?\d{3}",
    r"(?:ya|already)\s+(?:pagu[eé]|paid)", r"\b(?:otra vez|again)\b",
]  # fmt: skip
MESSAGES = [
    "Hola, ¿a qué hora abren mañana?", "Buenas tardes, quería saber el precio del envío a Sevilla",
    "Quiero un reembolso de mi pedido #48213, llegó roto", "Do you ship to Portugal?",
    "Gracias!!", "¿Tienen cita libre el sábado por la mañana?", "This is a scam, I want my money back",
    "No funciona el código de descuento", "Hi, I'd like to book an appointment for Tuesday",
    "ok", "👍", "Mi factura F2026-118 tiene un error", "Necesito hablar con el encargado, es urgente",
    "Where is my order #99812? I already paid", "¿Aceptan tarjeta?", "Perfecto, nos vemos el jueves",
    "Me han cobrado dos veces, quiero que me devuelvan el dinero", "Can I change the delivery address?",
    "La talla M me queda pequeña, ¿puedo cambiarla?", "Llevo una semana esperando y nadie contesta",
]  # fmt: skip


def fresh_database() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(  # noqa: S603
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql],  # noqa: S607
            check=True,
        )


def corpus(count: int, seed: int = 14) -> list[str]:
    """Customer-style messages: the samples above, some lengthened with filler, in a fixed order."""
    rng = random.Random(seed)  # noqa: S311 - a fixed corpus, not a secret
    filler = ["por favor", "gracias", "please", "thanks", "la verdad", "a ver", "vale", "hoy"]
    out = []
    for _ in range(count):
        text = rng.choice(MESSAGES)
        if rng.random() < 0.3:
            text = f"{text} {' '.join(rng.choices(filler, k=rng.randint(3, 30)))}"
        out.append(text)
    return out


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--sentiment", type=int, default=0, help="sentiment rules among the keyword ones")
    args = parser.parse_args()

    fresh_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)
    from apps.accounts.models import Workspace
    from apps.alerts.models import AlertRule
    from apps.alerts.rules import Facts, matches, rules_version_bump, workspace_rules
    from apps.alerts.sentiment import sentiment_score
    from apps.conversations.models import Contact, Conversation, Message
    from apps.conversations.services.alerting import alerts_check
    from apps.whatsapp.models import Channel

    workspace = Workspace.objects.create(name="Bench", slug="bench-alerts")
    channel = Channel.objects.create(workspace=workspace, kind="cloud", phone_number_id="990001")
    keyword_count = 30 - args.sentiment
    kinds = (
        ["keyword"] * keyword_count
        + ["sentiment"] * args.sentiment
        + ["regex"] * 15
        + ["asked_for_person", "providers_failed", "no_answer"] * 2
    )
    rng = random.Random(50)  # noqa: S311 - a fixed rule set, not a secret
    for index, kind in enumerate((kinds * 2)[: args.rules]):
        fields: dict[str, object] = {"keywords": [], "pattern": "", "minutes": 0}
        if kind == "keyword":
            fields["keywords"] = rng.sample(KEYWORDS, 3)
            fields["exclusions"] = ["no quiero"] if index % 5 == 0 else []
        elif kind == "regex":
            fields["pattern"] = PATTERNS[index % len(PATTERNS)]
        elif kind == "no_answer":
            fields["minutes"] = 20
        elif kind == "sentiment":
            fields["threshold"] = -0.2 - 0.1 * (index % 5)
        AlertRule.objects.create(
            workspace=workspace,
            name=f"rule {index}",
            kind=kind,
            severity="medium",
            cooldown_minutes=0,
            **fields,
        )
    rules_version_bump(workspace.pk)
    compiled = workspace_rules(workspace.pk)
    messages = corpus(args.messages)

    # (a) matching alone
    facts = [
        Facts(
            workspace_id=workspace.pk,
            channel_id=channel.pk,
            conversation_id=1,
            conversation_status="open",
            text=t,
        )
        for t in messages
    ]
    for fact in facts[:100]:  # warm-up
        matches(compiled, fact)
    pure = []
    for fact in facts:
        started = time.perf_counter()
        matches(compiled, fact)
        pure.append((time.perf_counter() - started) * 1000)
    scoring = []
    for text in messages:
        started = time.perf_counter()
        sentiment_score(text)
        scoring.append((time.perf_counter() - started) * 1000)

    # (b) the whole evaluation as inbound runs it, one conversation per message, rows written
    whole = []
    quiet: list[float] = []  # messages that raised nothing
    loud: list[float] = []  # messages that raised at least one alert
    for index, text in enumerate(messages):
        contact = Contact.objects.create(workspace=workspace, wa_id=f"34600{index:06d}")
        conversation = Conversation.objects.create(workspace=workspace, channel=channel, contact=contact)
        message = Message.objects.create(
            workspace=workspace,
            channel=channel,
            conversation=conversation,
            contact=contact,
            direction="in",
            author="customer",
            body=text,
        )
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            started = time.perf_counter()
            count = alerts_check(conversation=locked, message=message, text=text)
            elapsed = (time.perf_counter() - started) * 1000
        if index >= 50:  # warm-up: connections, first compile
            whole.append(elapsed)
            (loud if count else quiet).append(elapsed)

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values):.3f} | {percentile(values, 0.9):.3f} | "
            f"{percentile(values, 0.99):.3f} | {max(values):.3f} |"
        )

    lines = [
        f"{args.rules} active rules ({keyword_count} keyword of 3 phrases, {args.sentiment} sentiment, "
        "15 regex, 5 conditions), "
        f"{args.messages} customer messages (the first 50 warm up); {len(loud)} of the measured "
        f"{len(whole)} raised at least one alert.",
        "",
        "| ms per message | median | p90 | p99 | max |",
        "|---|---|---|---|---|",
        row("matching alone", pure),
        *([row("... of which scoring the sentiment (once per message)", scoring)] if args.sentiment else []),
        row("whole evaluation (cache read, match, cool-down, rows)", whole),
        row("... of a message that raised nothing", quiet),
        row("... of a message that raised alerts", loud),
    ]
    out = ROOT / "bench" / "results" / ("alerts-sentiment.md" if args.sentiment else "alerts.md")
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
