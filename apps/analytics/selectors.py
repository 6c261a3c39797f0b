"""What a manager reads: figures of one workspace over a range of days in its time zone, optionally of
one channel, aggregated in SQL over the rows the other apps write (messages, conversations, reply usage,
consent records, alerts). Read-only: nothing here writes, and no domain app imports this module.

Each selector reads the rows of the range once (one scan per table, grouped in the database) and shapes
the groups in Python; bench/analytics.py times them on a year of 1,000,000 messages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import (
    Aggregate,
    Avg,
    Count,
    Exists,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate, TruncHour
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.alerts.models import Alert, Severity
from apps.assistant.models import Provider, ReplyUsage
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
    end = end or (today if start is None else min(start + timedelta(days=DEFAULT_DAYS - 1), today))
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


class _SQLitePercentile:
    """percentile_cont for SQLite (the embedded mode), registered on the connection when first used."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: float | None, fraction: float) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        return percentile(sorted(self.values), self.fraction)


class Percentile(Aggregate):
    """The continuous percentile of an expression within each group (0 < fraction < 1)."""

    name = "Percentile"
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 < fraction < 1:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        connection.ensure_connection()
        connection.connection.create_aggregate("analytics_percentile", 2, _SQLitePercentile)
        return self.as_sql(
            compiler,
            connection,
            function="analytics_percentile",
            template="%(function)s(%(expressions)s, %(fraction)s)",
            **extra,
        )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- messages ----------------------------------------------------------------------------------------
def _messages(period: Period) -> QuerySet[Message]:
    return Message.objects.filter(
        period.channel(),
        workspace_id=period.workspace_id,
        created_at__gte=period.since,
        created_at__lt=period.until,
    )


def message_volume(*, period: Period) -> dict[str, Any]:
    """Messages in (from customers) and out (bot, staff, campaigns) by local day and by hour of day.

    One grouped scan by local hour; days and hours of day are summed from its groups."""
    groups = (
        _messages(period)
        .annotate(hour=TruncHour("created_at", tzinfo=period.zone))
        .values("hour", "direction")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("hour", "direction", "n")
    )
    by_day = {day: {IN: 0, OUT: 0} for day in period.days()}
    by_hour = [{IN: 0, OUT: 0} for _ in range(24)]
    for hour, direction, n in groups:
        local = hour.astimezone(period.zone)
        if local.date() in by_day:  # always, but a clock change must not raise
            by_day[local.date()][direction] += n
        by_hour[local.hour][direction] += n
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


def response_times(*, period: Period) -> dict[str, Any]:
    """Of the conversations opened in the range: the bot's first response (its first message after the
    customer's first), people's first response (the first staff message after the first hand-off),
    and the share the bot answered alone (it replied; never handed over, no staff message). Of the
    conversations closed in the range: the resolution time (opened to closed).

    Each conversation's first messages are found through the (conversation, created_at) index and the
    staff messages' partial index, not by reading every message of the range."""
    of_conversation = Message.objects.filter(conversation=OuterRef("pk"))
    opened = (
        _conversations(period)
        .filter(created_at__gte=period.since, created_at__lt=period.until)
        .annotate(first_in=_first(of_conversation.filter(direction=IN)))
        .annotate(
            first_bot=_first(
                of_conversation.filter(author=Message.Author.BOT, created_at__gte=OuterRef("first_in"))
            ),
            first_staff=_first(of_conversation.filter(author=Message.Author.AGENT)),
        )
        .values_list("first_in", "first_bot", "handed_at", "first_staff")
    )
    bot: list[float] = []
    people: list[float] = []
    asked = bot_alone = 0
    for first_in, first_bot, handed_at, first_staff in opened:
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
    groups = (
        _messages(period)
        .filter(direction=OUT)
        .values("status", "error_code")
        .annotate(n=Count("pk"), title=Max("error_title"))
        .order_by()
        .values_list("status", "error_code", "n", "title")
    )
    total = 0
    by_status: dict[str, int] = defaultdict(int)
    failures: dict[int | None, dict[str, Any]] = {}
    for status, code, n, title in groups:
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


def llm_usage(*, period: Period) -> dict[str, Any]:
    """Replies by the provider and model that produced them: tokens, cost, latency (average, p50, p90),
    answers from the reply cache, and fallbacks (the first provider tried did not answer). The offline
    responder is a row too: when it answered after tries, every provider had failed."""
    groups = (
        _replies(period)
        .values("provider", "model")
        .annotate(
            replies=Count("pk"),
            cache_hits=Count("pk", filter=Q(cache_hit=True)),
            tried=Count("pk", filter=_TRIED),
            fallbacks=Count("pk", filter=_FELL_BACK),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost_usd"),
            latency_avg=Avg("latency_ms"),
            latency_p50=Percentile("latency_ms", 0.5),
            latency_p90=Percentile("latency_ms", 0.9),
        )
        .order_by("provider", "model")
    )
    rows = []
    totals = {"replies": 0, "cache_hits": 0, "tried": 0, "fallbacks": 0, "all_failed": 0}
    cost_total = Decimal("0")
    for group in groups:
        for key in ("replies", "cache_hits", "tried", "fallbacks"):
            totals[key] += group[key]
        if group["provider"] == Provider.OFFLINE:
            totals["all_failed"] += group["tried"]
        cost = Decimal(group["cost"] or 0)
        cost_total += cost
        rows.append(
            {
                "provider": group["provider"],
                "model": group["model"],
                "replies": group["replies"],
                "cache_hits": group["cache_hits"],
                "fallbacks": group["fallbacks"],
                "tokens_in": group["tokens_in"] or 0,
                "tokens_out": group["tokens_out"] or 0,
                "cost_usd": cost.quantize(Decimal("0.000001")),
                "latency_avg_ms": round(group["latency_avg"] or 0),
                "latency_p50_ms": round(group["latency_p50"] or 0),
                "latency_p90_ms": round(group["latency_p90"] or 0),
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
