"""The task that processes a group of stored messages (one broker message for many webhook requests)."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations import tasks
from apps.conversations.events import InboundMessage
from apps.conversations.models import Message
from apps.conversations.services import inbound
from apps.conversations.services.ingest import inbound_store
from apps.whatsapp.models import Channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


def stored(count: int) -> list[int]:
    channel = Channel.objects.create(
        workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="2001"
    )
    items = [
        InboundMessage(
            wamid=f"wamid.group.{n}",
            type="text",
            timestamp=timezone.now(),
            from_wa_id=f"52155500{n:02d}",
            from_bsuid="",
            from_name=f"Cliente {n}",
            body=f"hola {n}",
            raw={"type": "text", "text": {"body": f"hola {n}"}},
        )
        for n in range(count)
    ]
    return inbound_store(channel=channel, messages=items)


def test_every_message_of_the_group_is_processed_once_in_order():
    ids = stored(3)

    assert tasks.inbound_messages_process(ids) == {"bot": 3}
    assert (
        Message.objects.filter(pk__in=ids, processed_at__isnull=False, conversation__isnull=False).count()
        == 3
    )
    assert tasks.inbound_messages_process(ids) == {"skipped": 3}  # a redelivered group does nothing twice


def test_a_message_that_fails_is_left_for_the_sweeper_and_the_rest_go_on(monkeypatch):
    ids = stored(3)
    real = inbound._process_one

    def broken_second(message_id: int) -> str:
        if message_id == ids[1]:
            raise ValueError("bad data in this one message")
        return real(message_id)

    monkeypatch.setattr(inbound, "_process_one", broken_second)

    assert tasks.inbound_messages_process(ids) == {"bot": 2, "failed": 1}
    failed = Message.objects.get(pk=ids[1])
    assert failed.processed_at is None and failed.attempts == 1  # the sweeper tries it again
    assert "bad data" in failed.last_error


def test_an_outage_stops_the_group_so_the_task_is_retried_whole(monkeypatch):
    ids = stored(2)
    real = inbound._process_one

    def database_blinks(message_id: int) -> str:
        if message_id == ids[1]:
            raise OperationalError("server closed the connection unexpectedly")
        return real(message_id)

    monkeypatch.setattr(inbound, "_process_one", database_blinks)
    with pytest.raises(OperationalError):
        tasks.inbound_messages_process(ids)
    assert OperationalError in tasks.inbound_messages_process.autoretry_for
    monkeypatch.setattr(inbound, "_process_one", real)

    assert tasks.inbound_messages_process(ids) == {"skipped": 1, "bot": 1}  # the retry finishes the rest


def test_the_enqueue_sends_one_task_for_one_id_and_one_group_task_for_several(tasks_captured):
    tasks.inbound_enqueue([5])
    tasks.inbound_enqueue([6, 7])

    assert [(call.name, call.args) for call in tasks_captured.calls] == [
        ("inbound.message_process", (5,)),
        ("inbound.messages_process", ([6, 7],)),
    ]
