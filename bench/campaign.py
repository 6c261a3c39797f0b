"""A campaign to N contacts run by real Celery workers against the Graph stand-in (issue 12).

The demo business's number at its configured rate (`send_rate`, the stand-in refusing with 130429
above the same rate), an approved marketing template with two variables, N contacts of which 2%
opted out. The campaign is scheduled through the service the API calls; a `campaigns` worker runs
its step chain and an `outbound` worker its sender. Measured: fan-out time (schedule to the last
recipient written), the send rate against the configured one, 130429 answers, customers sent twice,
opted-out customers sent to, and the campaigns worker's memory (RSS) after its first step, after the
fan-out and at the end. With --pause-at K the campaign is paused from the service after K sends and resumed
5 s later. With --fanout-only the campaign is cancelled once fanned out (for 100,000 contacts).

Usage: python bench/campaign.py [--count 10000] [--rate 80] [--pause-at 3000] [--fanout-only]
Writes bench/results/campaign-<count>.md (bench/report.py assembles docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("BENCH_OUTBOUND_DB", "bench_campaign")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
from outbound import QUEUE_KEYS, busiest_second, fresh_database, start_worker, stop_workers  # noqa: E402

STARTUP_GRACE = 150.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def setup(count: int, rate: int) -> tuple[Any, Any, Any]:
    from django.contrib.auth import get_user_model

    from apps.accounts.models import Workspace
    from apps.campaigns.models import Campaign, Template
    from apps.conversations.models import Contact, ConversationSettings
    from apps.whatsapp.models import Channel

    tag = uuid.uuid4().hex[:8]
    workspace = Workspace.objects.create(name="Tienda Sol", slug=f"tienda-{tag}")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="cloud",
        phone_number_id=f"bench-{tag}",
        waba_id="bench-waba",
        access_token="bench",  # noqa: S106 - the stand-in accepts any token
        send_rate=rate,
    )
    ConversationSettings.objects.update_or_create(
        workspace=workspace, defaults={"recipient_interval_seconds": 6.0}
    )
    Contact.objects.bulk_create(
        [
            Contact(
                workspace=workspace,
                wa_id=f"34{n:09d}",
                name=f"Cliente {n}",
                attributes={"offer": f"{10 + n % 20}%"},
                opted_out=n % 50 == 0,
            )
            for n in range(count)
        ],
        batch_size=5000,
    )
    template = Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id="bench-waba",
        name="oferta_invierno",
        language="es",
        category=Template.Category.MARKETING,
        status=Template.Status.APPROVED,
        components=[{"type": "BODY", "text": "Hola {{1}}, hoy {{2}} de descuento."}],
        variable_count=2,
    )
    user = get_user_model().objects.create(username=f"admin-{tag}")
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Invierno",
        template=template,
        channel=channel,
        audience_filters={},
        variables=[
            {"source": "name", "key": "", "default": ""},
            {"source": "attribute", "key": "offer", "default": "10%"},
        ],
    )
    return campaign, channel, user


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=80)
    parser.add_argument(
        "--pause-at", type=int, default=0, help="pause after this many sends, resume 5 s later"
    )
    parser.add_argument("--fanout-only", action="store_true", help="cancel once fanned out")
    parser.add_argument("--logs", default=tempfile.gettempdir())
    args = parser.parse_args()

    fresh_database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.campaigns.models import Campaign, Recipient
    from apps.campaigns.services import runner
    from apps.conversations.models import Message
    from standins.graph import GraphStandIn

    campaign, channel, user = setup(args.count, args.rate)
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(*QUEUE_KEYS, "campaigns")
    logs = Path(args.logs)
    with GraphStandIn() as standin:
        standin.set_rate_limit(args.rate)
        limited = [0]
        within = standin._within_rate_limit

        def counting(phone_number_id: str, now: float) -> bool:
            ok = within(phone_number_id, now)
            if not ok:
                limited[0] += 1
            return bool(ok)

        standin._within_rate_limit = counting  # type: ignore[method-assign]
        campaigns_worker = start_worker("campaigns", 2, standin.url, logs, "campaigns")
        outbound_worker = start_worker("outbound", 32, standin.url, logs, "outbound")
        procs = [campaigns_worker, outbound_worker]
        try:
            time.sleep(8)  # the workers import Django before they take tasks
            rss_start = 0.0  # taken once the first step ran (its imports are not the campaign's memory)
            started = time.monotonic()
            runner.campaign_schedule(campaign=campaign, user=user)
            fanout_s: float | None = None
            rss_fanned = 0.0
            paused_at: float | None = None
            last, progress = 0, time.monotonic() + STARTUP_GRACE
            while time.monotonic() - progress < 30:
                row = Campaign.objects.get(pk=campaign.pk)
                if not rss_start and row.fanout_cursor:
                    rss_start = rss_mb(campaigns_worker.pid)
                if fanout_s is None and row.fanned_out_at is not None:
                    fanout_s = time.monotonic() - started
                    rss_fanned = rss_mb(campaigns_worker.pid)
                    if args.fanout_only:
                        runner.campaign_cancel(campaign=row, user=user)
                        break
                done = len(standin.sent)
                if args.pause_at and paused_at is None and done >= args.pause_at:
                    runner.campaign_pause(campaign=row, user=user)
                    paused_at = time.monotonic()
                if (
                    paused_at is not None
                    and row.status == Campaign.Status.PAUSED
                    and time.monotonic() - paused_at > 5
                ):
                    runner.campaign_resume(campaign=row, user=user)
                if row.status in (Campaign.Status.COMPLETED, Campaign.Status.FAILED):
                    break
                if done > last:
                    last, progress = done, time.monotonic()
                time.sleep(0.25)
            rss_end = rss_mb(campaigns_worker.pid)
        finally:
            stop_workers(procs)
        sent = list(standin.sent)
    row = Campaign.objects.get(pk=campaign.pk)
    times = sorted(record["received_at"] for record in sent)
    pause_gap = 0.0
    if args.pause_at:
        pause_gap = max(b - a for a, b in zip(times, times[1:], strict=False)) if len(times) > 1 else 0.0
    sending_s = (times[-1] - times[0] - pause_gap) if len(times) > 1 else 0.0
    achieved = (len(times) - 1) / sending_s if sending_s > 0 else 0.0
    opted_out = {
        wa_id
        for wa_id in Recipient.objects.filter(campaign=campaign, skip_reason="opted_out").values_list(
            "contact__wa_id", flat=True
        )
    }
    result = {
        "count": args.count,
        "rate": args.rate,
        "status": row.status,
        "fanout_s": fanout_s or 0.0,
        "sent": len(sent),
        "twice": len(sent) - len({r["to"] for r in sent}),
        "opted_out_sent": sum(1 for r in sent if r["to"] in opted_out),
        "skipped_opted_out": len(opted_out),
        "achieved": achieved,
        "error_pct": 100.0 * (achieved - args.rate) / args.rate if achieved else 0.0,
        "busiest": busiest_second(times) if times else 0,
        "rate_limited": limited[0],
        "pause_gap": pause_gap,
        "rss": (rss_start, rss_fanned, rss_end),
        "funnel_sent": Message.objects.filter(
            workspace_id=campaign.workspace_id, author="campaign", send_state="sent"
        ).count(),
    }
    print(result, flush=True)
    command = (
        f"python bench/campaign.py --count {args.count} --rate {args.rate}"
        + (f" --pause-at {args.pause_at}" if args.pause_at else "")
        + (" --fanout-only" if args.fanout_only else "")
    )
    r = result
    lines = [
        f"`{command}`: campaign `{r['status']}`; fan-out of {args.count:,} contacts in **{r['fanout_s']:.1f} s**; "
        f"campaigns worker RSS {r['rss'][0]:.0f} MB after its first step, {r['rss'][1]:.0f} MB after the fan-out, "
        f"{r['rss'][2]:.0f} MB at the end.",
    ]
    if not args.fanout_only:
        lines.append(
            f"Sent {r['sent']:,} ({r['funnel_sent']:,} rows sent), customers sent twice: {r['twice']}, opted-out "
            f"customers sent to: {r['opted_out_sent']} (of {r['skipped_opted_out']} skipped); achieved "
            f"**{r['achieved']:.1f} msg/s** against {args.rate} ({r['error_pct']:+.1f}%), busiest 1 s window "
            f"{r['busiest']}, 130429 answers: **{r['rate_limited']}**"
            + (
                f"; paused after {args.pause_at:,} sends for {r['pause_gap']:.1f} s."
                if args.pause_at
                else "."
            )
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"campaign-{args.count}{'-fanout' if args.fanout_only else ''}.md").write_text(
        "\n\n".join(lines) + "\n"
    )


if __name__ == "__main__":
    main()
