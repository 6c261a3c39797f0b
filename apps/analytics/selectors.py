"""What a manager reads: figures of one workspace over a range of days in its time zone, optionally of
one channel, aggregated in SQL over the rows the other apps write (messages, conversations, reply usage,
consent records, alerts). Read-only: nothing here writes, and no domain app imports this module.

Messages and replies, the big tables, are read from the roll-ups (models.py, refreshed by beat) plus the
rows newer than them; the rest is grouped in SQL from the source tables. bench/analytics.py times every
request on a year of 1,000,000 messages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, ExtractHour, Floor, Greatest, Ln, TruncDate
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.alerts.models import Alert, Severity
from apps.analytics.models import MessageRollup, ReplyRollup, RollupState
from apps.assistant.models import Provider, ReplyUsage
from apps.campaigns.models import Campaign
from apps.campaigns.selectors import campaign_funnel
from apps.conversations.models import ConsentRecord, Conversation, Message
from apps.whatsapp.models import Channel
from chatbot.exceptions import ValidationFailed

MAX_DAYS = 366
DEFAULT_DAYS = 30
IN, OUT = Message.Direction.INBOUND.value, Message.Direction.OUTBOUND.value


@dataclass(frozen=True)
class Period:
    """Whole days `start`..`end` (both included) in the workspace's zone; `channel_id` None: every one."""

    workspace_id: int
    zone: ZoneInfo
    start: date
    end: date
    channel_id: int | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=self.zone)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.zone)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def channel(self, prefix: str = "") -> Q:
        return Q() if self.channel_id is None else Q(**{f"{prefix}channel_id": self.channel_id})


def workspace_zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def period_build(
    *,
    workspace: Workspace,
    start: date | None = None,
    end: date | None = None,
    channel_id: int | None = None,
    today: date | None = None,
) -> Period:
    """The period asked for; by default the last DEFAULT_DAYS days up to today (in the workspace's zone).

    Refuses a range that ends before it starts or spans more than MAX_DAYS days, and a channel of
    another workspace (alike with a missing one)."""
    zone = workspace_zone(workspace)
    today = today or datetime.now(zone).date()
    if end is None:  # up to today, or a month from a start in the future
        end = today if start is None else max(start, min(start + timedelta(days=DEFAULT_DAYS - 1), today))
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise ValidationFailed(_("The range ends before it starts."), details={"end": [_("Before start.")]})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            _("The range spans more than %(days)s days.") % {"days": MAX_DAYS},
            details={"end": [_("At most %(days)s days.") % {"days": MAX_DAYS}]},
        )
    if channel_id is not None and not Channel.objects.filter(pk=channel_id, workspace=workspace).exists():
        raise ValidationFailed(_("No such number in this workspace."), details={"channel": [_("Not found.")]})
    return Period(workspace_id=workspace.pk, zone=zone, start=start, end=end, channel_id=channel_id)


def period_channels(*, workspace: Workspace) -> QuerySet[Channel]:
    """The channels a period may be narrowed to."""
    return Channel.objects.filter(workspace=workspace).order_by("pk")


# --- percentiles -------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks: PostgreSQL's percentile_cont."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def percentile_of_counts(counts: dict[float, int], fraction: float) -> float | None:
    """`percentile` of a list given as {value: how many times}, without making the list."""
    total = sum(counts.values())
    if not total:
        return None
    position = (total - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    found: dict[int, float] = {}
    seen = 0
    for value in sorted(counts):
        after = seen + counts[value]
        for rank in (low, high):
            if rank not in found and seen <= rank < after:
                found[rank] = value
        if len(found) == 2 or high in found:
            break
        seen = after
    return found[low] + (found[high] - found[low]) * (position - low)


# Reply latencies are counted in bins LATENCY_RATIO apart (10%): a bin's middle stands for its replies.
LATENCY_RATIO = 1.1
_LN_RATIO = math.log(LATENCY_RATIO)


def latency_of_bin(latency_bin: int) -> float:
    return float(LATENCY_RATIO ** (latency_bin + 0.5))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@contextmanager
def _snapshot() -> Iterator[None]:
    """The roll-ups, their state and the newer source rows read as of one moment: a refresh that
    commits between two of the reads must not count a stretch twice (PostgreSQL's REPEATABLE READ;
    SQLite's transactions read a snapshot already)."""
    if connection.in_atomic_block:  # a caller's transaction (tests): its reads are its own
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def _rolled_until(period: Period) -> datetime | None:
    """Where the period's roll-ups stop (None: no roll-ups in the workspace's present time zone)."""
    return (
        RollupState.objects.filter(workspace_id=period.workspace_id, zone=period.zone.key)
        .values_list("rolled_until", flat=True)
        .first()
    )


def _rollups(model: type[Any], period: Period) -> QuerySet[Any]:
    grain = Q(channel__isnull=True) if period.channel_id is None else Q(channel_id=period.channel_id)
    rows: QuerySet[Any] = model.objects.filter(
        grain, workspace_id=period.workspace_id, day__gte=period.start, day__lte=period.end
    )
    return rows


def _tail_since(period: Period, rolled_until: datetime | None) -> datetime | None:
    """Source rows from this instant on are read as they are (None: the roll-ups hold the range)."""
    if rolled_until is None:
        return period.since
    return max(period.since, rolled_until) if rolled_until < period.until else None


# --- messages ----------------------------------------------------------------------------------------
def _messages(period: Period) -> QuerySet[Message]:
    return Message.objects.filter(
        period.channel(),
        workspace_id=period.workspace_id,
        created_at__gte=period.since,
        created_at__lt=period.until,
    )


def message_groups(rows: QuerySet[Message], zone: ZoneInfo, *, by_channel: bool) -> QuerySet[Any]:
    """Messages counted by local day and hour, direction, status and error code (the roll-up's grain;
    `by_channel` adds the channel)."""
    keys = ["day", "hour", "direction", "status", "error_code"]
    groups: QuerySet[Any] = (
        rows.annotate(day=TruncDate("created_at", tzinfo=zone), hour=ExtractHour("created_at", tzinfo=zone))
        .values(*(["channel_id", *keys] if by_channel else keys))
        .annotate(n=Count("pk"), title=Max("error_title"))
        .order_by()
    )
    return groups


def _message_counts(period: Period, keys: list[str], *, outbound_only: bool = False) -> list[dict[str, Any]]:
    """Messages of the period counted by `keys` (of day, hour, direction, status, error_code) as dicts
    with `n` and an error `title`: the roll-ups, then the messages after them, each grouped in SQL."""
    only = Q(direction=OUT) if outbound_only else Q()
    with _snapshot():
        rolled_until = _rolled_until(period)
        rows: list[dict[str, Any]] = []
        if rolled_until is not None:
            rows += (
                _rollups(MessageRollup, period)
                .filter(only)
                .values(*keys)
                .annotate(n=Sum("count"), title=Max("error_title"))
                .order_by()
            )
        tail = _tail_since(period, rolled_until)
        if tail is not None:
            recent = _messages(period).filter(only, created_at__gte=tail)
            rows += (
                recent.annotate(
                    day=TruncDate("created_at", tzinfo=period.zone),
                    hour=ExtractHour("created_at", tzinfo=period.zone),
                )
                .values(*keys)
                .annotate(n=Count("pk"), title=Max("error_title"))
                .order_by()
            )
    return rows


def message_volume(*, period: Period) -> dict[str, Any]:
    """Messages in (from customers) and out (bot, staff, campaigns) by local day and by hour of day."""
    by_day = {day: {IN: 0, OUT: 0} for day in period.days()}
    by_hour = [{IN: 0, OUT: 0} for _ in range(24)]
    for row in _message_counts(period, ["day", "direction"]):
        if row["day"] in by_day:  # always, but a row outside must not raise
            by_day[row["day"]][row["direction"]] += row["n"]
    for row in _message_counts(period, ["hour", "direction"]):
        by_hour[row["hour"]][row["direction"]] += row["n"]
    return {
        "by_day": [{"day": day, "inbound": c[IN], "outbound": c[OUT]} for day, c in by_day.items()],
        "by_hour": [{"hour": h, "inbound": c[IN], "outbound": c[OUT]} for h, c in enumerate(by_hour)],
        "inbound": sum(c[IN] for c in by_hour),
        "outbound": sum(c[OUT] for c in by_hour),
    }


# --- conversations -----------------------------------------------------------------------------------
def _conversations(period: Period) -> QuerySet[Conversation]:
    return Conversation.objects.filter(period.channel(), workspace_id=period.workspace_id)


def _count_by_day(rows: QuerySet[Any], field: str, period: Period) -> dict[date, int]:
    in_range = {f"{field}__gte": period.since, f"{field}__lt": period.until}
    grouped = (
        rows.filter(**in_range)
        .annotate(day=TruncDate(field, tzinfo=period.zone))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("day", "n")
    )
    return dict(grouped)


def conversation_counts(*, period: Period) -> dict[str, Any]:
    """Conversations opened, handed to a person (the first time), and closed, by local day."""
    opened = _count_by_day(_conversations(period), "created_at", period)
    handed = _count_by_day(_conversations(period), "handed_at", period)
    closed = _count_by_day(_conversations(period), "closed_at", period)
    by_day = [
        {"day": day, "opened": opened.get(day, 0), "handed": handed.get(day, 0), "closed": closed.get(day, 0)}
        for day in period.days()
    ]
    return {
        "by_day": by_day,
        "opened": sum(opened.values()),
        "handed": sum(handed.values()),
        "closed": sum(closed.values()),
    }


def _first(conversation_messages: QuerySet[Message]) -> Subquery:
    return Subquery(conversation_messages.order_by("created_at").values("created_at")[:1])


def _summary(name: str, seconds: Iterable[float]) -> dict[str, Any]:
    values = sorted(seconds)
    return {
        "measure": name,
        "count": len(values),
        "p50_seconds": None if not values else round(percentile(values, 0.5) or 0, 1),
        "p90_seconds": None if not values else round(percentile(values, 0.9) or 0, 1),
        "average_seconds": round(sum(values) / len(values), 1) if values else None,
    }


def first_messages(conversations: QuerySet[Conversation]) -> QuerySet[Any]:
    """Each conversation with its first customer message, the bot's first message after that, and the
    first staff message (`first_in`, `first_bot`, `first_staff`), found through the (conversation,
    created_at) index and the staff messages' partial index, not by reading every message."""
    of_conversation = Message.objects.filter(conversation=OuterRef("pk"))
    return conversations.annotate(first_in=_first(of_conversation.filter(direction=IN))).annotate(
        first_bot=_first(
            of_conversation.filter(author=Message.Author.BOT, created_at__gte=OuterRef("first_in"))
        ),
        first_staff=_first(of_conversation.filter(author=Message.Author.AGENT)),
    )


# A conversation's facts hold while it has had no message since they were counted.
_FACTS_HOLD = Q(analytics_facts__computed_until__gt=F("last_message_at"))


def response_times(*, period: Period) -> dict[str, Any]:
    """Of the conversations opened in the range: the bot's first response (its first message after the
    customer's first), people's first response (the first staff message after the first hand-off),
    and the share the bot answered alone (it replied; never handed over, no staff message). Of the
    conversations closed in the range: the resolution time (opened to closed).

    First messages come from the conversation facts (services.rollup_refresh) where they still hold,
    else from the messages themselves."""
    opened = _conversations(period).filter(created_at__gte=period.since, created_at__lt=period.until)
    with _snapshot():
        firsts = list(
            opened.filter(_FACTS_HOLD).values_list(
                "analytics_facts__first_in",
                "analytics_facts__first_bot",
                "handed_at",
                "analytics_facts__first_staff",
            )
        )
        firsts += first_messages(opened.exclude(_FACTS_HOLD)).values_list(
            "first_in", "first_bot", "handed_at", "first_staff"
        )
    bot: list[float] = []
    people: list[float] = []
    asked = bot_alone = 0
    for first_in, first_bot, handed_at, first_staff in firsts:
        if first_in is None:
            continue  # opened by us (a campaign, a template): nobody asked
        asked += 1
        if first_bot is not None:
            bot.append((first_bot - first_in).total_seconds())
            if handed_at is None and first_staff is None:
                bot_alone += 1
        if handed_at is not None and first_staff is not None and first_staff >= handed_at:
            people.append((first_staff - handed_at).total_seconds())
    closed = (
        _conversations(period)
        .filter(closed_at__gte=period.since, closed_at__lt=period.until)
        .values_list("created_at", "closed_at")
    )
    resolution = [(closed_at - created_at).total_seconds() for created_at, closed_at in closed if closed_at]
    return {
        "rows": [
            _summary("bot_first_response", bot),
            _summary("people_first_response", people),
            _summary("resolution", resolution),
        ],
        "customer_conversations": asked,
        "answered_by_bot_alone": bot_alone,
        "bot_alone_share": _rate(bot_alone, asked),
    }


# --- delivery ----------------------------------------------------------------------------------------
FUNNEL_STAGES = ("sent", "delivered", "read", "failed")
_REACHED = {
    "sent": {Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ},
    "delivered": {Message.Status.DELIVERED, Message.Status.READ},
    "read": {Message.Status.READ},
    "failed": {Message.Status.FAILED},
}


def delivery_funnel(*, period: Period) -> dict[str, Any]:
    """Outbound messages created in the range: how many WhatsApp reported sent, delivered (a delivered
    one was sent), read (a read one was delivered), and failed, by Meta's error code."""
    total = 0
    by_status: dict[str, int] = defaultdict(int)
    failures: dict[int | None, dict[str, Any]] = {}
    for row in _message_counts(period, ["status", "error_code"], outbound_only=True):
        status, code, title, n = row["status"], row["error_code"], row["title"], row["n"]
        total += n
        by_status[status] += n
        if status == Message.Status.FAILED:
            row = failures.setdefault(code, {"error_code": code, "error_title": "", "count": 0})
            row["count"] += n
            row["error_title"] = row["error_title"] or title or ""
    funnel: list[dict[str, Any]] = [
        {"stage": stage, "count": sum(by_status[s] for s in _REACHED[stage])} for stage in FUNNEL_STAGES
    ]
    waiting = total - sum(row["count"] for row in funnel if row["stage"] in ("sent", "failed"))
    return {
        "outbound": total,
        "not_yet_sent": waiting,
        "funnel": funnel,
        "failures": sorted(failures.values(), key=lambda row: (-row["count"], row["error_code"] or 0)),
    }


# --- the assistant's replies -------------------------------------------------------------------------
def _replies(period: Period) -> QuerySet[ReplyUsage]:
    rows = ReplyUsage.objects.filter(
        workspace_id=period.workspace_id, created_at__gte=period.since, created_at__lt=period.until
    )
    if period.channel_id is not None:
        rows = rows.filter(
            conversation_id__in=Conversation.objects.filter(
                workspace_id=period.workspace_id, channel_id=period.channel_id
            ).values("pk")
        )
    return rows


# A reply fell back when the first provider tried did not answer it (the path lists every try).
_FELL_BACK = Q(fallback_path__0__outcome__isnull=False) & ~Q(fallback_path__0__outcome="ok")
_TRIED = Q(fallback_path__0__isnull=False)
REPLY_SUMS = [
    "replies",
    "cache_hits",
    "tried",
    "fallbacks",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms_sum",
]


def reply_groups(rows: QuerySet[ReplyUsage], zone: ZoneInfo, *, by_channel: bool) -> QuerySet[Any]:
    """Replies counted by local day, provider, model and latency bin (the roll-up's grain; `by_channel`
    adds the channel of the reply's conversation as `channel_ref`)."""
    keys = ["day", "provider", "model", "latency_bin"]
    if by_channel:
        rows = rows.annotate(
            channel_ref=Subquery(
                Conversation.objects.filter(pk=OuterRef("conversation_id")).values("channel_id")[:1]
            )
        )
        keys.insert(0, "channel_ref")
    groups: QuerySet[Any] = (
        rows.annotate(
            day=TruncDate("created_at", tzinfo=zone),
            latency_bin=Cast(
                Floor(Ln(Greatest("latency_ms", 1, output_field=FloatField())) / _LN_RATIO), IntegerField()
            ),
        )
        .values(*keys)
        .annotate(
            replies=Count("pk"),
            cache_hits=Count("pk", filter=Q(cache_hit=True)),
            tried=Count("pk", filter=_TRIED),
            fallbacks=Count("pk", filter=_FELL_BACK),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost_usd=Sum("cost_usd"),
            latency_ms_sum=Sum("latency_ms"),
        )
        .order_by()
    )
    return groups


def _reply_counts(period: Period) -> list[dict[str, Any]]:
    """Reply groups over the period (keys: provider, model, latency_bin and REPLY_SUMS): the roll-ups,
    then the replies after them."""
    with _snapshot():
        rolled_until = _rolled_until(period)
        rows: list[dict[str, Any]] = []
        if rolled_until is not None:
            summed = (
                _rollups(ReplyRollup, period)
                .values("provider", "model", "latency_bin")
                .annotate(**{f"total_{name}": Sum(name) for name in REPLY_SUMS})
                .order_by()
            )
            rows += [{**row, **{name: row[f"total_{name}"] for name in REPLY_SUMS}} for row in summed]
        tail = _tail_since(period, rolled_until)
        if tail is not None:
            recent = _replies(period).filter(created_at__gte=tail)
            rows += reply_groups(recent, period.zone, by_channel=False)
    return rows


def llm_usage(*, period: Period) -> dict[str, Any]:
    """Replies by the provider and model that produced them: tokens, cost, latency (average, p50, p90,
    the percentiles read from 10% latency bins), answers from the reply cache, and fallbacks (the first
    provider tried did not answer). The offline responder is a row too: when it answered after tries,
    every provider had failed."""
    sums: dict[tuple[str, str], dict[str, Any]] = {}
    latencies: dict[tuple[str, str], dict[float, int]] = {}
    for group in _reply_counts(period):
        key = (group["provider"], group["model"])
        total = sums.setdefault(key, dict.fromkeys(REPLY_SUMS, 0))
        for name in REPLY_SUMS:
            total[name] += group[name] or 0
        bins = latencies.setdefault(key, defaultdict(int))
        bins[latency_of_bin(group["latency_bin"])] += group["replies"]
    rows = []
    totals = {"replies": 0, "cache_hits": 0, "tried": 0, "fallbacks": 0, "all_failed": 0}
    cost_total = Decimal("0")
    for (provider, model), total in sorted(sums.items()):
        for name in ("replies", "cache_hits", "tried", "fallbacks"):
            totals[name] += total[name]
        if provider == Provider.OFFLINE:
            totals["all_failed"] += total["tried"]
        cost = Decimal(total["cost_usd"] or 0)
        cost_total += cost
        p50 = percentile_of_counts(latencies[(provider, model)], 0.5)
        p90 = percentile_of_counts(latencies[(provider, model)], 0.9)
        rows.append(
            {
                "provider": provider,
                "model": model,
                "replies": total["replies"],
                "cache_hits": total["cache_hits"],
                "fallbacks": total["fallbacks"],
                "tokens_in": total["tokens_in"],
                "tokens_out": total["tokens_out"],
                "cost_usd": cost.quantize(Decimal("0.000001")),
                "latency_avg_ms": round(total["latency_ms_sum"] / total["replies"])
                if total["replies"]
                else 0,
                "latency_p50_ms": round(p50 or 0),
                "latency_p90_ms": round(p90 or 0),
            }
        )
    return {
        "rows": rows,
        "replies": totals["replies"],
        "cost_usd": cost_total.quantize(Decimal("0.000001")),
        "cache_hit_rate": _rate(totals["cache_hits"], totals["replies"]),
        "fallback_rate": _rate(totals["fallbacks"], totals["tried"]),
        "all_failed_rate": _rate(totals["all_failed"], totals["tried"]),
    }


# --- alerts and opt-outs -----------------------------------------------------------------------------
def alerts_by_severity(*, period: Period) -> dict[str, Any]:
    """Alerts raised in the range by severity, with how many are still open, acknowledged, resolved."""
    groups = (
        Alert.objects.filter(
            period.channel(),
            workspace_id=period.workspace_id,
            created_at__gte=period.since,
            created_at__lt=period.until,
        )
        .values("severity", "state")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("severity", "state", "n")
    )
    counts: dict[str, dict[str, int]] = {s: defaultdict(int) for s in Severity.values}
    for severity, state, n in groups:
        counts.setdefault(severity, defaultdict(int))[state] += n
    rows = [
        {
            "severity": severity,
            "alerts": sum(states.values()),
            "open": states[Alert.State.OPEN],
            "acknowledged": states[Alert.State.ACKNOWLEDGED],
            "resolved": states[Alert.State.RESOLVED],
        }
        for severity, states in sorted(counts.items(), key=lambda item: _SEVERITY_ORDER.get(item[0], 9))
    ]
    return {"rows": rows, "alerts": sum(row["alerts"] for row in rows)}


_SEVERITY_ORDER: dict[str, int] = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


def opt_outs(*, period: Period) -> dict[str, Any]:
    """Marketing opt-outs recorded in the range, by local day and by source (keyword, button, ...).
    With a channel: of the customers who have a conversation on it (consent is the customer's, not a
    number's)."""
    records = ConsentRecord.objects.filter(
        workspace_id=period.workspace_id,
        kind=ConsentRecord.Kind.MARKETING,
        opted_in=False,
        at__gte=period.since,
        at__lt=period.until,
    )
    if period.channel_id is not None:
        records = records.filter(
            Exists(Conversation.objects.filter(contact=OuterRef("contact"), channel_id=period.channel_id))
        )
    groups = (
        records.annotate(day=TruncDate("at", tzinfo=period.zone))
        .values("day", "source")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("day", "source", "n")
    )
    by_day: dict[date, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    for day, source, n in groups:
        by_day[day] += n
        by_source[source] += n
    return {
        "by_day": [{"day": day, "opt_outs": by_day.get(day, 0)} for day in period.days()],
        "by_source": [{"source": s, "opt_outs": n} for s, n in sorted(by_source.items())],
        "opt_outs": sum(by_source.values()),
    }


CAMPAIGN_COLUMNS = [
    "campaign",
    "name",
    "status",
    "started_at",
    "total",
    "skipped",
    "sent",
    "delivered",
    "read",
    "replied",
    "failed",
    "cancelled",
]


def campaign_funnels(*, period: Period) -> dict[str, Any]:
    """Each campaign started in the period (on the channel, when one is chosen): its funnel, as the
    campaign's page shows it (one aggregate per campaign, over its recipients and their messages)."""
    started = Campaign.objects.filter(
        period.channel(),
        workspace_id=period.workspace_id,
        started_at__gte=period.since,
        started_at__lt=period.until,
    ).order_by("started_at", "pk")
    rows = []
    for campaign in started:
        funnel = campaign_funnel(campaign=campaign)
        rows.append(
            {
                "campaign": campaign.pk,
                "name": campaign.name,
                "status": campaign.status,
                "started_at": campaign.started_at,
                **{column: funnel[column] for column in CAMPAIGN_COLUMNS[4:]},
            }
        )
    return {"rows": rows}
