from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.live import services
from apps.live.models import LiveEvent
from apps.live.selectors import live_events_since, live_last_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def rung(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(services, "_ring", calls.append)
    return calls


def test_publish_writes_the_row_and_rings_only_after_commit(rung, django_capture_on_commit_callbacks):
    workspace = WorkspaceFactory.create()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = services.live_publish(
            workspace_id=workspace.pk, kind="message", conversation_id=7, payload={"message_id": 3}
        )
        assert rung == []  # still inside the transaction

    stored = LiveEvent.objects.get(pk=event.pk)
    assert (stored.kind, stored.conversation_id, stored.payload) == ("message", 7, {"message_id": 3})
    assert len(callbacks) == 1
    callbacks[0]()
    assert rung == [workspace.pk]


def test_a_rolled_back_change_leaves_no_event_and_no_ring(rung):
    from django.db import transaction

    workspace = WorkspaceFactory.create()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.live_publish(workspace_id=workspace.pk, kind="conversation")
        raise RuntimeError

    assert not LiveEvent.objects.exists()
    assert rung == []


def test_a_channel_layer_failure_is_swallowed(monkeypatch, caplog):
    class Broken:
        async def group_send(self, group, message):
            raise ConnectionError("redis down")

    monkeypatch.setattr(services, "get_channel_layer", lambda: Broken())

    services._ring(1)  # no exception: the row is the truth
    services.ringer_stop()  # sends what is due

    assert "live wake-up for workspace 1 not sent" in caplog.text


def test_events_since_are_the_workspaces_own_in_order():
    mine, other = WorkspaceFactory.create(), WorkspaceFactory.create()
    first = services.live_publish(workspace_id=mine.pk, kind="message")
    services.live_publish(workspace_id=other.pk, kind="message")
    second = services.live_publish(workspace_id=mine.pk, kind="status")

    assert [e.pk for e in live_events_since(workspace=mine, after_id=0)] == [first.pk, second.pk]
    assert [e.pk for e in live_events_since(workspace=mine, after_id=first.pk)] == [second.pk]
    assert live_last_id(workspace=mine) == second.pk


def test_cleanup_removes_events_older_than_a_day():
    workspace = WorkspaceFactory.create()
    old = services.live_publish(workspace_id=workspace.pk, kind="message")
    fresh = services.live_publish(workspace_id=workspace.pk, kind="message")
    LiveEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, minutes=1))

    assert services.live_events_cleanup() == 1
    assert list(LiveEvent.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_conversation_services_publish_their_changes(rung):
    from apps.accounts.tests.factories import UserFactory
    from apps.conversations.services.actions import conversation_takeover
    from apps.conversations.tests.factories import ConversationFactory

    conversation = ConversationFactory.create()

    conversation_takeover(conversation=conversation, user=UserFactory.create())

    event = LiveEvent.objects.get()
    assert (event.workspace_id, event.kind, event.conversation_id) == (
        conversation.workspace_id,
        "conversation",
        conversation.pk,
    )
