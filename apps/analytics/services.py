"""The one write of analytics: its own roll-ups (models.py), rebuilt from the source tables."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.analytics import selectors
from apps.analytics.models import ConversationFacts, MessageRollup, ReplyRollup, RollupState
from apps.assistant.models import ReplyUsage
from apps.conversations.models import Conversation, Message

NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def _insert(table: str, columns: list[str], select: str, params: Any) -> None:
    """INSERT ... SELECT: names are ours, the SELECT is Django's compiled SQL with its parameters."""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) {select}", params)


def _message_rollups(workspace_id: int, since: datetime | None, until: datetime, zone: Any) -> None:
    rows = Message.objects.filter(workspace_id=workspace_id, created_at__lt=until)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    sql, params = selectors.message_groups(rows, zone, by_channel=True).query.sql_with_params()
    columns = ["workspace_id", "channel_id", "day", "hour", "direction", "status", "error_code"]
    keys = "g.day, g.hour, g.direction, g.status, g.error_code"
    _insert(
        MessageRollup._meta.db_table,
        [*columns, "error_title", "count"],
        f"SELECT %s, g.channel_id, {keys}, COALESCE(g.title, ''), g.n FROM ({sql}) g",  # noqa: S608
        (workspace_id, *params),
    )
    _insert(
        MessageRollup._meta.db_table,
        [*columns, "error_title", "count"],
        f"SELECT %s, NULL, {keys}, MAX(COALESCE(g.title, '')), SUM(g.n) FROM ({sql}) g GROUP BY {keys}",  # noqa: S608
        (workspace_id, *params),
    )


def _reply_rollups(workspace_id: int, since: datetime | None, until: datetime, zone: Any) -> None:
    rows = ReplyUsage.objects.filter(workspace_id=workspace_id, created_at__lt=until)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    sql, params = selectors.reply_groups(rows, zone, by_channel=True).query.sql_with_params()
    keys = "g.day, g.provider, g.model, g.latency_bin"
    sums = ", ".join(f"SUM(g.{name})" for name in selectors.REPLY_SUMS)
    columns = ["workspace_id", "channel_id", "day", "provider", "model", "latency_bin", *selectors.REPLY_SUMS]
    table = ReplyRollup._meta.db_table
    values = ", ".join(f"g.{name}" for name in selectors.REPLY_SUMS)
    # A reply whose conversation is gone has no channel: it counts in the totals only.
    _insert(
        table,
        columns,
        f"SELECT %s, g.channel_ref, {keys}, {values} FROM ({sql}) g WHERE g.channel_ref IS NOT NULL",  # noqa: S608
        (workspace_id, *params),
    )
    _insert(
        table,
        columns,
        f"SELECT %s, NULL, {keys}, {sums} FROM ({sql}) g GROUP BY {keys}",  # noqa: S608
        (workspace_id, *params),
    )


def _conversation_facts(workspace_id: int, until: datetime) -> None:
    """Facts of the conversations that have none, or have had a message since theirs were counted."""
    conversations = Conversation.objects.filter(workspace_id=workspace_id)
    ConversationFacts.objects.filter(
        workspace_id=workspace_id, conversation__last_message_at__gte=F("computed_until")
    ).delete()
    missing = conversations.filter(analytics_facts__isnull=True)
    sql, params = (
        selectors.first_messages(missing)
        .values("id", "first_in", "first_bot", "first_staff")
        .query.sql_with_params()
    )
    _insert(
        ConversationFacts._meta.db_table,
        ["conversation_id", "workspace_id", "first_in", "first_bot", "first_staff", "computed_until"],
        f"SELECT g.id, %s, g.first_in, g.first_bot, g.first_staff, %s FROM ({sql}) g",  # noqa: S608
        (workspace_id, until, *params),
    )


def rollup_refresh(*, workspace: Workspace, now: datetime | None = None) -> RollupState:
    """Count the workspace's messages and replies up to now into the roll-ups.

    The last ANALYTICS_ROLLUP_REFRESH_DAYS local days are counted again on every run, so late changes
    (delivery statuses, a transaction that committed after the previous run) are picked up; the first
    run, and a run after the workspace changed its time zone, count everything. One run at a time per
    workspace (the state row is locked)."""
    zone = selectors.workspace_zone(workspace)
    until = (now or timezone.now()).replace(microsecond=0)
    RollupState.objects.get_or_create(workspace=workspace, defaults={"zone": "", "rolled_until": NEVER})
    with transaction.atomic():
        state = RollupState.objects.select_for_update().get(workspace=workspace)
        since: datetime | None = None
        messages = MessageRollup.objects.filter(workspace=workspace)
        replies = ReplyRollup.objects.filter(workspace=workspace)
        if state.zone == zone.key:
            first_day = state.rolled_until.astimezone(zone).date() - timedelta(
                days=settings.ANALYTICS_ROLLUP_REFRESH_DAYS
            )
            since = datetime.combine(first_day, time.min, tzinfo=zone)
            messages, replies = messages.filter(day__gte=first_day), replies.filter(day__gte=first_day)
        messages.delete()
        replies.delete()
        _message_rollups(workspace.pk, since, until, zone)
        _reply_rollups(workspace.pk, since, until, zone)
        _conversation_facts(workspace.pk, until)
        state.zone, state.rolled_until = zone.key, until
        state.save(update_fields=["zone", "rolled_until", "refreshed_at"])
    return state


def rollups_refresh_all() -> int:
    """Every workspace's roll-ups; the number of workspaces refreshed."""
    count = 0
    for workspace in Workspace.objects.order_by("pk").iterator():
        rollup_refresh(workspace=workspace)
        count += 1
    return count
