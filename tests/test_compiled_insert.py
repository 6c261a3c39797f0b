"""The hot-path INSERT (chatbot/compiled_insert.py): values of every kind the message row holds go in and
come back unchanged on the configured database (on PostgreSQL through a server-binding cursor), a
repeated row is skipped, and the statement is still seen by Django's query log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from apps.conversations.models import Message
from apps.whatsapp.tests.factories import ChannelFactory
from chatbot import compiled_insert

pytestmark = pytest.mark.django_db


def _row(channel, wamid: str) -> Message:
    return Message(
        workspace_id=channel.workspace_id,
        channel_id=channel.pk,
        direction=Message.Direction.INBOUND,
        author=Message.Author.CUSTOMER,
        type="text",
        body="¿Tenéis tarta de queso sin gluten? 🍰 'comillas' \"dobles\" \\ barra",
        payload={"nested": {"list": [1, 2.5, None, True], "texto": "año"}, "empty": {}},
        wamid=wamid,
        from_wa_id="34600111222",
        from_name="Marisa",
        sent_by_customer_at=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        status=Message.Status.RECEIVED,
    )


def test_a_row_goes_in_once_with_its_values_intact_and_is_logged():
    channel = ChannelFactory.create()
    row = _row(channel, "wamid.compiled-1")

    with CaptureQueriesContext(connection) as captured:
        [pk] = compiled_insert.insert([row], ignore_conflicts=True)
    again = compiled_insert.insert([_row(channel, "wamid.compiled-1")], ignore_conflicts=True)

    assert again == []  # the unique (channel, wamid) skipped it, no error
    [logged] = captured.captured_queries
    assert logged["sql"].startswith("INSERT") and "conversations_message" in logged["sql"]
    stored = Message.objects.get(pk=pk)
    assert (stored.body, stored.payload, stored.sent_by_customer_at) == (
        row.body,
        row.payload,
        row.sent_by_customer_at,
    )
    assert isinstance(stored.uid, uuid.UUID) and stored.uid == row.uid
    assert (stored.direction, stored.status, stored.from_name) == ("in", "received", "Marisa")


def test_the_same_statement_many_times_on_one_connection_keeps_working():
    """Many single rows, then a group, on one connection: the server-bound statement leaves no state
    behind that a later one could trip on (PostgreSQL)."""
    channel = ChannelFactory.create()
    ids = [compiled_insert.insert([_row(channel, f"wamid.prepared-{n}")])[0] for n in range(12)]
    several = compiled_insert.insert([_row(channel, f"wamid.group-{n}") for n in range(3)])

    assert len(set(ids)) == 12 and len(several) == 3
    assert Message.objects.filter(channel=channel).count() == 15
    expected = _row(channel, "unused").payload
    assert [p for p in Message.objects.filter(pk__in=ids).values_list("payload", flat=True)] == [
        expected
    ] * 12


def test_the_insert_is_counted_in_the_database_metrics():
    channel = ChannelFactory.create()
    labels = {"alias": "default", "vendor": connection.vendor}
    before = REGISTRY.get_sample_value("django_db_execute_total", labels) or 0.0

    compiled_insert.insert([_row(channel, "wamid.counted-1")])

    assert REGISTRY.get_sample_value("django_db_execute_total", labels) == before + 1
