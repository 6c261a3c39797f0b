"""Roll-ups: the figures read from them (plus the rows newer than them) equal the figures read from the
source tables, with nothing counted twice across the seam, late changes picked up by the next refresh,
and a change of time zone counted again from the start."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.analytics import selectors, services
from apps.analytics.models import ConversationFacts, MessageRollup, ReplyRollup, RollupState
from apps.assistant.models import ReplyUsage
from apps.conversations.models import Conversation, Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
DAY10, DAY11 = date(2026, 1, 10), date(2026, 1, 11)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def message(conversation: Any, at: datetime, **fields: Any) -> Message:
    row = MessageFactory.create(conversation=conversation, **fields)
    Message.objects.filter(pk=row.pk).update(created_at=at)
    return row


def reply(workspace: Any, conversation: Any, at: datetime, **fields: Any) -> None:
    row = ReplyUsage.objects.create(workspace=workspace, conversation_id=conversation.pk, **fields)
    ReplyUsage.objects.filter(pk=row.pk).update(created_at=at)


@pytest.fixture
def shop() -> Any:
    workspace = WorkspaceFactory.create(timezone="Asia/Kolkata")  # UTC+5:30: days start at 18:30 UTC
    main, other = ChannelFactory.create(workspace=workspace), ChannelFactory.create(workspace=workspace)
    talk, aside = ConversationFactory.create(channel=main), ConversationFactory.create(channel=other)
    message(talk, utc(9, 18, 29))  # 23:59 on the 9th in Kolkata: outside
    message(talk, utc(9, 18, 30))  # 00:00 on the 10th
    message(talk, utc(10, 9), direction="out", author="bot", status="read")
    message(talk, utc(10, 9), direction="out", author="bot", status="failed", error_code=131026)
    message(aside, utc(10, 19))  # 00:30 on the 11th
    ok = [{"provider": "openai", "outcome": "ok"}]
    for latency in (100, 200, 400, 800):
        reply(workspace, talk, utc(10, 9), provider="openai", model="m", latency_ms=latency, fallback_path=ok)
    reply(
        workspace, aside, utc(10, 20), provider="gemini", model="g", latency_ms=300, cost_usd=Decimal("0.5")
    )
    return workspace, main, other, talk


def figures(workspace: Any, channel: Any = None) -> dict[str, Any]:
    period = selectors.period_build(
        workspace=workspace, start=DAY10, end=DAY11, channel_id=channel.pk if channel else None
    )
    return {
        "messages": selectors.message_volume(period=period),
        "delivery": selectors.delivery_funnel(period=period),
        "llm": selectors.llm_usage(period=period),
    }


def test_figures_from_the_rollups_equal_those_from_the_source_tables(shop):
    workspace, main, other, _ = shop
    before = {None: figures(workspace), main: figures(workspace, main), other: figures(workspace, other)}

    state = services.rollup_refresh(workspace=workspace, now=utc(12, 0))

    assert (state.zone, state.rolled_until) == ("Asia/Kolkata", utc(12, 0))
    assert MessageRollup.objects.filter(workspace=workspace, channel__isnull=True).exists()
    assert ReplyRollup.objects.filter(workspace=workspace, channel=main).exists()
    for channel, expected in before.items():
        assert figures(workspace, channel) == expected
    assert before[None]["messages"]["by_day"][0] == {"day": DAY10, "inbound": 1, "outbound": 2}
    assert before[None]["messages"]["by_day"][1] == {"day": DAY11, "inbound": 1, "outbound": 0}


def test_rows_after_the_rollups_are_counted_once_across_the_seam(shop):
    workspace, _, _, talk = shop
    services.rollup_refresh(workspace=workspace, now=utc(10, 12))  # the middle of the 10th
    message(talk, utc(10, 11, 59))  # before the seam, in the roll-ups
    message(talk, utc(10, 13))  # after it

    volume = figures(workspace)["messages"]

    # 00:00 and 13:00+ (tail) on the 10th, 00:30 on the 11th; the row written at 11:59 after the
    # refresh is a late commit: the next refresh counts it.
    assert (volume["inbound"], volume["outbound"]) == (3, 2)
    services.rollup_refresh(workspace=workspace, now=utc(10, 14))
    assert figures(workspace)["messages"]["inbound"] == 4


def test_a_late_delivery_status_reaches_the_rollups_at_the_next_refresh(shop):
    workspace, *_ = shop
    services.rollup_refresh(workspace=workspace, now=utc(12, 0))
    Message.objects.filter(status="read").update(status="failed", error_code=131047)

    stale = figures(workspace)["delivery"]["failures"]
    services.rollup_refresh(workspace=workspace, now=utc(12, 5))

    assert [row["error_code"] for row in stale] == [131026]
    assert sorted(row["error_code"] for row in figures(workspace)["delivery"]["failures"]) == [131026, 131047]


def test_a_new_time_zone_counts_everything_again_on_its_days(shop):
    workspace, *_ = shop
    services.rollup_refresh(workspace=workspace, now=utc(12, 0))
    workspace.timezone = "UTC"
    workspace.save()

    unrolled = figures(workspace)["messages"]["by_day"]  # no roll-ups in UTC yet: the source tables
    services.rollup_refresh(workspace=workspace, now=utc(12, 0))

    assert RollupState.objects.get(workspace=workspace).zone == "UTC"
    assert figures(workspace)["messages"]["by_day"] == unrolled
    assert unrolled == [
        {"day": DAY10, "inbound": 1, "outbound": 2},  # 18:30 on the 9th is the 9th in UTC; 19:00 the 10th
        {"day": DAY11, "inbound": 0, "outbound": 0},
    ]


def test_a_workspaces_rollups_hold_only_its_own_rows(shop):
    workspace, *_ = shop
    stranger = MessageFactory.create()
    Message.objects.filter(pk=stranger.pk).update(created_at=utc(10, 9))

    services.rollups_refresh_all()

    assert set(MessageRollup.objects.values_list("workspace_id", flat=True)) == {
        workspace.pk,
        stranger.workspace_id,
    }
    assert figures(workspace)["messages"]["inbound"] == 2


def test_response_times_from_conversation_facts_equal_those_from_the_messages(shop):
    workspace, _, _, talk = shop
    Conversation.objects.filter(workspace=workspace).update(
        created_at=utc(10, 0), last_message_at=utc(10, 20)
    )
    period = selectors.period_build(workspace=workspace, start=DAY10, end=DAY11)
    from_messages = selectors.response_times(period=period)

    services.rollup_refresh(workspace=workspace, now=utc(12, 0))

    facts = ConversationFacts.objects.get(conversation=talk)
    assert (facts.first_in, facts.first_bot, facts.first_staff) == (utc(9, 18, 29), utc(10, 9), None)
    assert selectors.response_times(period=period) == from_messages
    assert from_messages["rows"][0]["p50_seconds"] == (utc(10, 9) - utc(9, 18, 29)).total_seconds()
    assert (from_messages["customer_conversations"], from_messages["answered_by_bot_alone"]) == (2, 1)


def test_a_conversation_with_a_message_after_its_facts_is_read_from_its_messages(shop):
    workspace, _, _, talk = shop
    Conversation.objects.filter(workspace=workspace).update(
        created_at=utc(10, 0), last_message_at=utc(10, 20)
    )
    services.rollup_refresh(workspace=workspace, now=utc(12, 0))
    message(talk, utc(12, 0, 1), direction="out", author="agent")  # a person answers after the refresh
    Conversation.objects.filter(pk=talk.pk).update(handed_at=utc(12, 0), last_message_at=utc(12, 0, 1))
    period = selectors.period_build(workspace=workspace, start=DAY10, end=DAY11)

    live = selectors.response_times(period=period)
    services.rollup_refresh(workspace=workspace, now=utc(12, 5))

    assert live["rows"][1] == {
        "measure": "people_first_response",
        "count": 1,
        "p50_seconds": 60.0,
        "p90_seconds": 60.0,
        "average_seconds": 60.0,
    }
    assert live["answered_by_bot_alone"] == 0
    assert ConversationFacts.objects.get(conversation=talk).first_staff == utc(12, 0, 1)
    assert selectors.response_times(period=period) == live


def test_the_command_refreshes_one_workspace_or_refuses_an_unknown_one(shop):
    from io import StringIO

    from django.core.management import CommandError, call_command

    workspace, *_ = shop
    other = WorkspaceFactory.create()
    out = StringIO()

    call_command("analytics_refresh", workspace=workspace.slug, stdout=out)

    assert out.getvalue().startswith(f"{workspace.slug}: counted until ")
    assert set(RollupState.objects.values_list("workspace_id", flat=True)) == {workspace.pk}
    assert RollupState.objects.get().zone == "Asia/Kolkata"
    with pytest.raises(CommandError):
        call_command("analytics_refresh", workspace="nope")
    call_command("analytics_refresh", stdout=StringIO())
    assert RollupState.objects.filter(workspace=other).exists()
