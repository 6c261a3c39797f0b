"""Pins what keeps a large message table cheap (issue 20, bench/growth.py): PostgreSQL's plan for the
prompt history and the sweeper uses the indexes made for them, and the admin message list runs no
query over the whole table beyond its page (no DISTINCT for filters or dates)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.tests.factories import UserFactory
from apps.conversations.models import INBOUND_SET_ASIDE
from apps.conversations.services import replies
from apps.conversations.services.sweeper import sweep
from apps.conversations.tests.factories import ConversationFactory, MessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


def plan_indexes(sql: str) -> set[str]:
    """The indexes PostgreSQL's plan for `sql` reads, sequential scans and sorts ruled out (a test table
    is tiny, where a scan is cheapest, and statistics taken by autovacuum mid-suite on a few rows can
    make any index plus a sort look as cheap; this asks which index fits the query's shape)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        [[plan]] = cursor.fetchone()
    found: set[str] = set()

    def walk(node: dict) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)["Plan"] if isinstance(plan, str) else plan["Plan"])
    return found


def message_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if 'FROM "conversations_message"' in q["sql"]]


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's")


@pytest.mark.usefixtures("postgres_only")
def test_the_prompt_history_reads_a_conversations_last_turns_by_its_own_index():
    conversation = ConversationFactory.create()
    rows = [MessageFactory.create(conversation=conversation, body=f"turn {n}") for n in range(3)]

    with CaptureQueriesContext(connection) as captured:
        replies._turns(conversation, rows[-1].pk)

    [history] = [sql for sql in message_queries(captured) if "ORDER BY" in sql and "LIMIT" in sql]
    assert "conv_msg_conversation_id" in plan_indexes(history)


@pytest.mark.usefixtures("postgres_only")
def test_the_sweeper_finds_unprocessed_inbound_rows_through_the_partial_index():
    MessageFactory.create(direction="in", processed_at=None)

    with CaptureQueriesContext(connection) as captured:
        sweep(processing_timeout=timedelta(minutes=5))

    [inbound] = [sql for sql in message_queries(captured) if '"processed_at" IS NULL' in sql]
    assert plan_indexes(inbound) == {"conv_msg_inbound_unprocessed"}
    # Ordered by age: unordered, the LIMIT led the real planner to a whole-table scan at 1M rows.
    assert 'ORDER BY "conversations_message"."created_at" ASC' in inbound


def test_the_admin_message_list_filters_without_reading_every_message(client):
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    conversation = ConversationFactory.create()
    image = MessageFactory.create(conversation=conversation, type="image", body="")
    set_aside = MessageFactory.create(conversation=conversation, failure_reason=INBOUND_SET_ASIDE, body="x")

    with CaptureQueriesContext(connection) as captured:
        everything = client.get("/admin/conversations/message/")
    images = client.get("/admin/conversations/message/?type=image")
    failed = client.get(f"/admin/conversations/message/?failure_reason={INBOUND_SET_ASIDE}")

    assert everything.status_code == images.status_code == failed.status_code == 200
    assert not [sql for sql in message_queries(captured) if "DISTINCT" in sql]
    assert [m.pk for m in images.context["cl"].result_list] == [image.pk]
    assert [m.pk for m in failed.context["cl"].result_list] == [set_aside.pk]
    assert "set aside (processing failed)" in everything.content.decode()


@pytest.mark.usefixtures("postgres_only")
def test_the_queue_list_and_its_count_read_the_queue_index():
    from apps.conversations import selectors

    row = MessageFactory.create(direction="out", author="bot", send_state="sent")
    queue = selectors.queue_list(workspace=row.workspace)

    page_sql, page_params = queue[:50].query.sql_with_params()
    count_sql, count_params = queue.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        page = cursor.mogrify(page_sql, page_params)
        count = cursor.mogrify(f"SELECT count(*) FROM ({count_sql}) rows", count_params)  # noqa: S608

    assert "conv_msg_queue" in plan_indexes(page)
    assert "conv_msg_queue" in plan_indexes(count)
