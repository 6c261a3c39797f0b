"""Each figure against hand-made rows, in a workspace on Madrid time (UTC+1 in January): a message at
23:30 UTC belongs to the next local day, and rows of another workspace, another channel or outside
the range never count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.alerts.models import Alert, Severity
from apps.alerts.tests.factories import AlertFactory
from apps.analytics import selectors
from apps.analytics.export import table_csv_rows
from apps.assistant.models import ReplyUsage
from apps.conversations.models import ConsentRecord, Conversation, Message
from apps.conversations.tests.factories import ContactFactory, ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory
from chatbot.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db
DAY10, DAY11 = date(2026, 1, 10), date(2026, 1, 11)


def utc(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def message(conversation: Conversation, at: datetime, **fields: Any) -> Message:
    row = MessageFactory.create(conversation=conversation, **fields)
    Message.objects.filter(pk=row.pk).update(created_at=at)
    return row


def out(conversation: Conversation, at: datetime, **fields: Any) -> Message:
    fields = {"direction": "out", "author": "bot", "status": "delivered", **fields}
    return message(conversation, at, **fields)


def conversation(channel: Any, opened: datetime, **fields: Any) -> Conversation:
    row = ConversationFactory.create(channel=channel, **fields)
    Conversation.objects.filter(pk=row.pk).update(created_at=opened)
    row.refresh_from_db()
    return row


@pytest.fixture
def shop() -> Any:
    workspace = WorkspaceFactory.create(timezone="Europe/Madrid")
    return workspace, ChannelFactory.create(workspace=workspace), ChannelFactory.create(workspace=workspace)


def period(workspace: Any, channel: Any = None, start: date = DAY10, end: date = DAY11) -> selectors.Period:
    return selectors.period_build(
        workspace=workspace, start=start, end=end, channel_id=channel.pk if channel else None
    )


def test_messages_count_by_local_day_and_hour_across_the_utc_midnight(shop):
    workspace, main, other = shop
    talk = conversation(main, utc(9, 20))
    message(talk, utc(9, 22, 59))  # 23:59 on the 9th in Madrid: before the range
    message(talk, utc(9, 23, 30))  # 00:30 on the 10th
    out(talk, utc(10, 22, 59))  # 23:59 on the 10th
    message(talk, utc(10, 23, 0))  # 00:00 on the 11th
    message(talk, utc(11, 23, 0))  # 00:00 on the 12th: after it
    message(conversation(other, utc(11, 9)), utc(11, 9))  # 10:00 on the 11th, the other number
    stranger = ConversationFactory.create()
    message(stranger, utc(10, 12))

    figures = selectors.message_volume(period=period(workspace))
    only_main = selectors.message_volume(period=period(workspace, main))

    assert figures["by_day"] == [
        {"day": DAY10, "inbound": 1, "outbound": 1},
        {"day": DAY11, "inbound": 2, "outbound": 0},
    ]
    hours = {
        row["hour"]: (row["inbound"], row["outbound"])
        for row in figures["by_hour"]
        if row["inbound"] or row["outbound"]
    }
    assert hours == {0: (2, 0), 10: (1, 0), 23: (0, 1)}
    assert (figures["inbound"], figures["outbound"]) == (3, 1)
    assert [row["inbound"] for row in only_main["by_day"]] == [1, 1]
    assert len(figures["by_hour"]) == 24


def test_conversations_opened_handed_and_closed_count_on_their_local_day(shop):
    workspace, main, other = shop
    conversation(main, utc(9, 23, 30), handed_at=utc(10, 23, 10), closed_at=utc(11, 8))
    conversation(main, utc(10, 10), status="closed", closed_at=utc(11, 23, 30))  # closed on the 12th
    conversation(other, utc(11, 10), handed_at=utc(11, 11))
    conversation(main, utc(9, 22))  # opened on the 9th
    ConversationFactory.create(handed_at=utc(10, 12))  # another workspace

    figures = selectors.conversation_counts(period=period(workspace))

    assert figures["by_day"] == [
        {"day": DAY10, "opened": 2, "handed": 0, "closed": 0},
        {"day": DAY11, "opened": 1, "handed": 2, "closed": 1},
    ]
    assert (figures["opened"], figures["handed"], figures["closed"]) == (3, 2, 1)
    assert selectors.conversation_counts(period=period(workspace, other))["handed"] == 1


def test_first_response_times_resolution_and_the_share_the_bot_answered_alone(shop):
    workspace, main, _ = shop
    start = utc(10, 9)
    alone = conversation(main, start)
    message(alone, start)
    out(alone, start + timedelta(seconds=4))
    handed = conversation(
        main, start, handed_at=start + timedelta(seconds=60), closed_at=start + timedelta(hours=1)
    )
    message(handed, start)
    out(handed, start + timedelta(seconds=10))
    out(handed, start + timedelta(seconds=360), author="agent")
    unanswered = conversation(main, start)
    message(unanswered, start)
    campaign = conversation(main, start)
    out(campaign, start, author="campaign")
    old = conversation(main, utc(1, 9), closed_at=utc(10, 10))  # opened before, closed in the range
    message(old, utc(1, 9))

    figures = selectors.response_times(period=period(workspace))

    rows = {row["measure"]: row for row in figures["rows"]}
    assert rows["bot_first_response"] == {
        "measure": "bot_first_response",
        "count": 2,
        "p50_seconds": 7.0,
        "p90_seconds": 9.4,
        "average_seconds": 7.0,
    }
    assert (rows["people_first_response"]["count"], rows["people_first_response"]["p50_seconds"]) == (
        1,
        300.0,
    )
    assert rows["resolution"]["count"] == 2
    assert rows["resolution"]["p50_seconds"] == (3600 + 9 * 86400 + 3600) / 2
    assert (figures["customer_conversations"], figures["answered_by_bot_alone"]) == (3, 1)
    assert figures["bot_alone_share"] == 0.3333


def test_no_conversations_give_counts_of_zero_and_no_percentiles(shop):
    workspace, _, _ = shop

    figures = selectors.response_times(period=period(workspace))

    assert [row["count"] for row in figures["rows"]] == [0, 0, 0]
    assert {row["p50_seconds"] for row in figures["rows"]} == {None}
    assert figures["bot_alone_share"] is None


def test_delivery_funnel_counts_each_stage_reached_and_failures_by_error_code(shop):
    workspace, main, _ = shop
    talk = conversation(main, utc(10, 8))
    for status in ("sent", "delivered", "read", "queued"):
        out(talk, utc(10, 9), status=status)
    out(talk, utc(10, 9), status="failed", error_code=131026, error_title="Message undeliverable")
    out(talk, utc(10, 9), status="failed", error_code=131026, error_title="Message undeliverable")
    out(talk, utc(10, 9), status="failed", error_code=131047, error_title="=HYPERLINK(evil)")
    message(talk, utc(10, 9))  # inbound: not in the funnel
    out(talk, utc(12, 9), status="failed", error_code=1)  # after the range

    figures = selectors.delivery_funnel(period=period(workspace))

    assert figures["funnel"] == [
        {"stage": "sent", "count": 3},
        {"stage": "delivered", "count": 2},
        {"stage": "read", "count": 1},
        {"stage": "failed", "count": 3},
    ]
    assert (figures["outbound"], figures["not_yet_sent"]) == (7, 1)
    assert figures["failures"] == [
        {"error_code": 131026, "error_title": "Message undeliverable", "count": 2},
        {"error_code": 131047, "error_title": "=HYPERLINK(evil)", "count": 1},
    ]
    csv_rows = list(table_csv_rows(table="delivery_failures", period=period(workspace)))
    assert csv_rows == [
        ["error_code", "error_title", "count"],
        ["131026", "Message undeliverable", "2"],
        ["131047", "'=HYPERLINK(evil)", "1"],
    ]


def usage(workspace: Any, at: datetime, **fields: Any) -> ReplyUsage:
    row = ReplyUsage.objects.create(workspace=workspace, **fields)
    ReplyUsage.objects.filter(pk=row.pk).update(created_at=at)
    return row


def test_llm_usage_by_provider_and_model_with_cache_fallback_and_failure_rates(shop):
    workspace, main, other = shop
    ok = [{"provider": "openai", "outcome": "ok"}]
    at = utc(10, 12)
    talk = conversation(main, at)
    for latency, tokens in ((100, 10), (200, 20)):
        usage(
            workspace, at, provider="openai", model="gpt-4o-mini", latency_ms=latency, tokens_in=tokens,
            tokens_out=5, cost_usd=Decimal("0.0015"), fallback_path=ok, conversation_id=talk.pk,
        )  # fmt: skip
    usage(workspace, at, provider="openai", model="gpt-4o-mini", latency_ms=400, cache_hit=True)
    usage(
        workspace, at, provider="gemini", model="gemini-2.0-flash", latency_ms=900, conversation_id=talk.pk,
        fallback_path=[{"provider": "openai", "outcome": "timeout"}, {"provider": "gemini", "outcome": "ok"}],
    )  # fmt: skip
    usage(
        workspace, at, provider="offline", latency_ms=8000,
        fallback_path=[{"provider": "openai", "outcome": "timeout"}, {"provider": "gemini", "outcome": "error"}],
    )  # fmt: skip
    usage(workspace, utc(12, 12), provider="openai", model="gpt-4o-mini")  # after the range
    usage(WorkspaceFactory.create(), at, provider="openai", model="gpt-4o-mini")

    figures = selectors.llm_usage(period=period(workspace))
    only_main = selectors.llm_usage(period=period(workspace, main))

    rows = {row["provider"]: row for row in figures["rows"]}
    assert list(rows) == ["gemini", "offline", "openai"]
    assert rows["openai"] == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "replies": 3,
        "cache_hits": 1,
        "fallbacks": 0,
        "tokens_in": 30,
        "tokens_out": 10,
        "cost_usd": Decimal("0.003000"),
        "latency_avg_ms": 233,
        "latency_p50_ms": rows["openai"]["latency_p50_ms"],
        "latency_p90_ms": rows["openai"]["latency_p90_ms"],
    }
    # Read from 10% latency bins: within 5% of percentile_cont's 200 and 360 ms.
    assert rows["openai"]["latency_p50_ms"] == pytest.approx(200, rel=0.05)
    assert rows["openai"]["latency_p90_ms"] == pytest.approx(360, rel=0.05)
    assert (rows["gemini"]["fallbacks"], rows["offline"]["fallbacks"]) == (1, 1)
    assert figures["replies"] == 5
    assert (figures["cache_hit_rate"], figures["fallback_rate"], figures["all_failed_rate"]) == (
        0.2,
        0.5,
        0.25,
    )
    assert [(row["provider"], row["replies"]) for row in only_main["rows"]] == [("gemini", 1), ("openai", 2)]
    assert selectors.llm_usage(period=period(workspace, other))["rows"] == []


def test_alerts_by_severity_and_state(shop):
    workspace, main, _ = shop
    made = []
    for severity, state in (
        ("high", "open"),
        ("high", "open"),
        ("high", "resolved"),
        ("low", "acknowledged"),
    ):
        made.append(AlertFactory.create(rule__workspace=workspace, rule__severity=severity, state=state))
    made.append(AlertFactory.create(rule__workspace=workspace))  # raised after the range
    Alert.objects.filter(pk__in=[a.pk for a in made[:4]]).update(created_at=utc(10, 12))
    Alert.objects.filter(pk=made[4].pk).update(created_at=utc(12, 12))
    stranger = AlertFactory.create()  # another workspace's
    Alert.objects.filter(pk=stranger.pk).update(created_at=utc(10, 12))

    figures = selectors.alerts_by_severity(period=period(workspace))

    assert figures["rows"] == [
        {"severity": Severity.HIGH, "alerts": 3, "open": 2, "acknowledged": 0, "resolved": 1},
        {"severity": Severity.MEDIUM, "alerts": 0, "open": 0, "acknowledged": 0, "resolved": 0},
        {"severity": Severity.LOW, "alerts": 1, "open": 0, "acknowledged": 1, "resolved": 0},
    ]
    assert figures["alerts"] == 4
    assert selectors.alerts_by_severity(period=period(workspace, main))["alerts"] == 0


def test_opt_outs_by_local_day_and_source(shop):
    workspace, main, other = shop
    ana = conversation(main, utc(1, 9)).contact
    ben = ContactFactory.create(workspace=workspace)
    conversation(other, utc(1, 9), contact=ben)

    def consent(contact: Any, at: datetime, **fields: Any) -> None:
        values = {"kind": "marketing", "opted_in": False, "source": "keyword", **fields}
        ConsentRecord.objects.create(workspace=workspace, contact=contact, at=at, **values)

    consent(ana, utc(10, 23, 30))  # the 11th in Madrid
    consent(ben, utc(10, 9), source="button")
    consent(ben, utc(10, 10), opted_in=True)
    consent(ben, utc(10, 11), kind="utility")

    figures = selectors.opt_outs(period=period(workspace))

    assert figures["by_day"] == [{"day": DAY10, "opt_outs": 1}, {"day": DAY11, "opt_outs": 1}]
    assert figures["by_source"] == [{"source": "button", "opt_outs": 1}, {"source": "keyword", "opt_outs": 1}]
    assert selectors.opt_outs(period=period(workspace, main))["opt_outs"] == 1


def test_the_period_defaults_to_thirty_days_and_refuses_bad_ranges_and_other_channels(shop):
    workspace, main, _ = shop

    default = selectors.period_build(workspace=workspace, today=date(2026, 3, 31))

    assert (default.start, default.end) == (date(2026, 3, 2), date(2026, 3, 31))
    assert default.since == datetime(2026, 3, 2, tzinfo=selectors.workspace_zone(workspace))
    assert default.until.utcoffset() == timedelta(hours=2)  # summer time began on 29 March
    with pytest.raises(ValidationFailed):
        selectors.period_build(workspace=workspace, start=DAY11, end=DAY10)
    with pytest.raises(ValidationFailed):
        selectors.period_build(workspace=workspace, start=date(2025, 1, 1), end=date(2026, 1, 2))
    with pytest.raises(ValidationFailed):
        selectors.period_build(workspace=workspace, channel_id=ChannelFactory.create().pk)
    assert selectors.period_build(workspace=workspace, channel_id=main.pk).channel_id == main.pk


def test_percentile_interpolates_like_postgresql():
    assert selectors.percentile([4.0, 10.0], 0.9) == pytest.approx(9.4)
    assert selectors.percentile([1.0], 0.5) == 1.0
    assert selectors.percentile([], 0.5) is None


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.9, 0.99])
def test_percentile_of_counts_equals_the_percentile_of_the_list_they_stand_for(fraction):
    counts = {3.0: 1, 5.0: 4, 8.0: 2, 13.0: 7, 21.0: 1}
    values = sorted(value for value, n in counts.items() for _ in range(n))

    assert selectors.percentile_of_counts(counts, fraction) == pytest.approx(
        selectors.percentile(values, fraction)
    )
    assert selectors.percentile_of_counts({}, fraction) is None


def test_a_start_alone_reads_a_month_at_most_and_never_ends_before_it(shop):
    workspace, _, _ = shop
    today = date(2026, 3, 31)

    assert selectors.period_build(workspace=workspace, start=date(2026, 3, 20), today=today).end == today
    assert selectors.period_build(workspace=workspace, start=date(2026, 1, 1), today=today).end == date(
        2026, 1, 30
    )
    assert selectors.period_build(workspace=workspace, start=date(2026, 6, 1), today=today).end == date(
        2026, 6, 1
    )
