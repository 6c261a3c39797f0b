"""Knowledge retrieval as a business's FAQ grows (issue 20 item 1): what the first reply pays after an FAQ
edit, when one thread or eight arrive together, a warm query, and the process's memory across edits.

A workspace with `--faqs` generated FAQs (Spanish and English, a vocabulary of a few thousand words so
terms are spread as in a real catalogue) is written once through the services' bulk path into the
database `bench_knowledge`; each measurement then bumps the knowledge version the way an edit does and
times `knowledge.retrieve`, the function every reply calls.

Needs PostgreSQL on localhost.
Usage: python bench/knowledge.py [--faqs 10000,50000] [--runs 5] [--name knowledge]
Writes bench/results/<name>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = os.environ.get("BENCH_KNOWLEDGE_DB", "bench_knowledge")
os.environ.update(
    {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "REDIS_URL": "",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": "/dev/null",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "JWT_SECRET": "bench-only-jwt-secret-0123456789-abcdef",
        "METRICS_TOKEN": "bench-only-metrics-token-0123",
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
        "FERNET_KEYS": "YmVuY2gtb25seS1mZXJuZXQta2V5LTAxMjM0NTY3ODk=",
    }
)
STEMS_ES = (
    "tarta pastel pan envío pedido reserva factura devolución horario tienda local precio descuento "
    "alérgeno gluten lactosa vegano encargo cumpleaños boda recogida domicilio pago tarjeta efectivo "
    "bizum cupón regalo caja sabor chocolate fresa limón vainilla nata crema hojaldre croissant"
).split()
STEMS_EN = (
    "cake bread delivery order booking invoice refund hours shop price discount allergen gluten dairy "
    "vegan custom birthday wedding pickup home payment card cash voucher gift box flavour chocolate "
    "strawberry lemon vanilla cream pastry croissant"
).split()


def psql(sql: str) -> None:
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)  # noqa: S603, S607


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def build(workspace_slug: str, faqs: int) -> int:
    """`faqs` FAQs in a new workspace, written as the CSV import writes them (bulk, chunks included)."""
    from apps.accounts.models import Workspace
    from apps.assistant import services
    from apps.assistant.models import KnowledgeEntry

    rng = random.Random(faqs)  # noqa: S311 - synthetic data
    workspace = Workspace.objects.create(slug=workspace_slug, name=workspace_slug)
    services.profile_get_or_create(workspace_id=workspace.pk)
    entries = []
    for n in range(faqs):
        spanish = n % 2 == 0
        stems = STEMS_ES if spanish else STEMS_EN
        # Product names make most terms rare, as in a real catalogue: "tarta 1234", "voucher 877".
        product = f"{rng.choice(stems)}{n % 4000}"
        words = [rng.choice(stems) for _ in range(6)]
        question = (
            f"¿Tenéis {product} con {words[0]} y {words[1]}?"
            if spanish
            else f"Do you have {product} with {words[0]} and {words[1]}?"
        )
        answer = " ".join([product, *words, *(rng.choice(stems) for _ in range(20))])
        entries.append(
            KnowledgeEntry(
                workspace=workspace,
                kind=KnowledgeEntry.Kind.FAQ,
                title=question,
                content=answer,
                language="es" if spanish else "en",
            )
        )
    KnowledgeEntry.objects.bulk_create(entries, batch_size=2000)
    services._chunks_write(list(KnowledgeEntry.objects.filter(workspace=workspace)))
    return workspace.pk


_edits = iter(range(10**9))


def edit(workspace_id: int) -> None:
    """One FAQ edited through the service, as the dashboard or the API does it: its answer changes (its
    chunk is rewritten) and the workspace's knowledge version moves on."""
    from apps.assistant import services
    from apps.assistant.models import KnowledgeEntry

    entry = KnowledgeEntry.objects.filter(workspace_id=workspace_id).order_by("pk").first()
    if entry is None:
        raise SystemExit("no FAQ to edit")
    services.knowledge_update(entry=entry, content=f"{entry.content.split(' #')[0]} #{next(_edits)}")


def eight_together(workspace_id: int, query: str) -> float:
    """Milliseconds until eight threads that asked at the same moment all have their answer."""
    from django.db import connections

    from apps.assistant import knowledge

    done: list[float] = []
    start = threading.Barrier(8)

    def reply() -> None:
        start.wait()
        knowledge.retrieve(workspace_id=workspace_id, query=query)
        done.append(time.perf_counter())
        connections.close_all()

    threads = [threading.Thread(target=reply) for _ in range(8)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (max(done) - t0) * 1000


def index_memory(workspace_id: int) -> dict[str, float]:
    """What one built index holds, against the data it is built from (chunk text, title and stored
    terms, UTF-8): Python objects traced by tracemalloc after the build, and the process's RSS growth."""
    import gc
    import tracemalloc

    from apps.assistant import knowledge, selectors

    rows = selectors.active_chunks(workspace_id=workspace_id)
    data = sum(len(r.text.encode()) + len(r.title.encode()) + len(r.terms.encode()) for r in rows)
    del rows
    gc.collect()
    # RSS first, untraced (tracemalloc's own bookkeeping would count), then the same build traced.
    rss_before = rss_mb()
    index = knowledge.build_index(workspace_id=workspace_id)
    rss_growth = rss_mb() - rss_before
    del index
    gc.collect()
    tracemalloc.start()
    index = knowledge.build_index(workspace_id=workspace_id)
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del index
    return {
        "data_mb": round(data / 2**20, 1),
        "index_mb": round(retained / 2**20, 1),
        "build_peak_mb": round(peak / 2**20, 1),
        "rss_growth_mb": round(rss_growth, 1),
    }


def measure(workspace_id: int, runs: int) -> dict[str, float]:
    from apps.assistant import knowledge

    query = "¿Tenéis tarta de chocolate sin gluten para un cumpleaños?"
    knowledge.retrieve(workspace_id=workspace_id, query=query)
    cold, together, warm = [], [], []
    rss = [rss_mb()]
    for _ in range(runs):
        edit(workspace_id)
        t = time.perf_counter()
        knowledge.retrieve(workspace_id=workspace_id, query=query)
        cold.append((time.perf_counter() - t) * 1000)
        for _ in range(20):
            t = time.perf_counter()
            knowledge.retrieve(workspace_id=workspace_id, query=query)
            warm.append((time.perf_counter() - t) * 1000)
        edit(workspace_id)
        together.append(eight_together(workspace_id, query))
        rss.append(rss_mb())
    return {
        "first_query_after_edit_ms": round(statistics.median(cold), 1),
        "eight_together_after_edit_ms": round(statistics.median(together), 1),
        "warm_query_ms": round(statistics.median(warm), 2),
        "rss_start_mb": round(rss[0], 1),
        "rss_end_mb": round(rss[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--faqs", default="10000,50000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="knowledge")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--memory", action="store_true", help="Also trace what one built index holds (tracemalloc: slower)."
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.faqs.split(",")]
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.models import Workspace
    from apps.assistant.models import KnowledgeEntry

    if args.fresh:
        connection.close()
        psql(f"DROP DATABASE IF EXISTS {DB}")
        psql(f"CREATE DATABASE {DB}")
    call_command("migrate", verbosity=0)
    figures = {}
    for size in sizes:
        slug = f"faq-{size}"
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None or KnowledgeEntry.objects.filter(workspace=workspace).count() != size:
            t = time.perf_counter()
            workspace_id = build(slug, size)
            print(f"{size:,} FAQs written in {time.perf_counter() - t:.1f} s", flush=True)
        else:
            workspace_id = workspace.pk
        memory = index_memory(workspace_id) if args.memory else {}
        figures[f"{size:,} FAQs"] = {**measure(workspace_id, args.runs), **memory}
        print(size, figures[f"{size:,} FAQs"], flush=True)
    command = "python bench/knowledge.py " + " ".join(sys.argv[1:])
    lines = [
        f"`{command}` (median of {args.runs} edits; warm: median of {20 * args.runs} queries):",
        "",
        "| FAQs | first query after an edit | 8 queries arriving together after an edit (all answered) "
        "| warm query | process RSS before / after the edits |",
        "|---|---|---|---|---|",
        *(
            f"| {size} | {f['first_query_after_edit_ms']} ms | {f['eight_together_after_edit_ms']} ms | "
            f"{f['warm_query_ms']} ms | {f['rss_start_mb']} / {f['rss_end_mb']} MB |"
            for size, f in figures.items()
        ),
    ]
    if args.memory:
        lines += [
            "",
            "| FAQs | data indexed (text, titles, terms) | one index in memory (traced) | peak while building "
            "| process RSS growth at the build |",
            "|---|---|---|---|---|",
            *(
                f"| {size} | {f['data_mb']} MB | {f['index_mb']} MB | {f['build_peak_mb']} MB "
                f"| {f['rss_growth_mb']} MB |"
                for size, f in figures.items()
            ),
        ]
    print("\n".join(lines))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{args.name}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
