from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.conversations.models import Conversation, Message
from apps.conversations.tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    outbound_message,
    reaction_message,
)
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

C = Conversation.Status


def iso(value) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- list, filters, search -------------------------------------------------------------------
def test_list_shows_the_workspaces_conversations_newest_activity_first(member_client):
    client, viewer = member_client(Role.VIEWER)
    now = timezone.now()
    channel = ChannelFactory(workspace=viewer.workspace)
    older = ConversationFactory(channel=channel, last_message_at=now - timedelta(hours=2))
    newer = ConversationFactory(channel=channel, last_message_at=now - timedelta(minutes=5))
    silent = ConversationFactory(channel=channel, last_message_at=None)
    ConversationFactory()  # another workspace

    response = client.get("/api/conversations/")

    assert ids(response) == [newer.pk, older.pk, silent.pk]
    assert response.json()["count"] == 3


def test_a_conversation_shows_its_contact_assignee_counters_and_window(member_client):
    client, agent = member_client(Role.AGENT)
    now = timezone.now()
    contact = ContactFactory(workspace=agent.workspace, wa_id="34600111222", name="", profile_name="Ana G.")
    agent.user.first_name, agent.user.last_name = "Eva", "Ruiz"
    agent.user.save()
    conversation = ConversationFactory(
        channel=ChannelFactory(workspace=agent.workspace),
        contact=contact,
        status=C.HUMAN,
        assignee=agent.user,
        unread_count=2,
        last_inbound_at=now - timedelta(hours=23),
        last_message_at=now - timedelta(hours=1),
    )

    response = client.get(f"/api/conversations/{conversation.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": conversation.pk,
        "channel": conversation.channel_id,
        "contact": {"id": contact.pk, "display_name": "Ana G.", "wa_id": "34600111222", "opted_out": False},
        "status": "human",
        "assignee": {"id": agent.user.pk, "username": agent.user.username, "name": "Eva Ruiz"},
        "unread_count": 2,
        "last_inbound_at": iso(conversation.last_inbound_at),
        "last_message_at": iso(conversation.last_message_at),
        "window_open": True,
        "created_at": iso(conversation.created_at),
        "closed_at": None,
    }


def test_the_window_is_closed_after_24_hours_or_before_any_customer_message(member_client):
    client, viewer = member_client(Role.VIEWER)
    channel = ChannelFactory(workspace=viewer.workspace)
    stale = ConversationFactory(
        channel=channel, last_inbound_at=timezone.now() - timedelta(hours=24, seconds=5)
    )
    never = ConversationFactory(channel=channel, last_inbound_at=None)

    windows = {row["id"]: row["window_open"] for row in client.get("/api/conversations/").json()["results"]}

    assert windows == {stale.pk: False, never.pk: False}


def test_filters_by_status_assignee_and_channel(member_client):
    client, agent = member_client(Role.AGENT)
    colleague = MembershipFactory(workspace=agent.workspace).user
    first, second = ChannelFactory(workspace=agent.workspace), ChannelFactory(workspace=agent.workspace)
    mine = ConversationFactory(channel=first, status=C.HUMAN, assignee=agent.user)
    theirs = ConversationFactory(channel=first, status=C.HUMAN, assignee=colleague)
    unassigned = ConversationFactory(channel=second, status=C.OPEN)
    closed = ConversationFactory(channel=second, status=C.CLOSED)

    assert ids(client.get("/api/conversations/?status=human")) == sorted([mine.pk, theirs.pk], reverse=True)
    assert ids(client.get("/api/conversations/?assignee=me")) == [mine.pk]
    assert ids(client.get(f"/api/conversations/?assignee={colleague.pk}")) == [theirs.pk]
    assert ids(client.get("/api/conversations/?assignee=none")) == sorted(
        [unassigned.pk, closed.pk], reverse=True
    )
    assert ids(client.get(f"/api/conversations/?channel={second.pk}&status=open")) == [unassigned.pk]


@pytest.mark.parametrize("query", ["status=sleeping", "assignee=someone", "channel=abc"])
def test_bad_filters_are_a_400_not_an_empty_list(member_client, query):
    client, _ = member_client(Role.VIEWER)

    response = client.get(f"/api/conversations/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_search_matches_contact_names_wa_id_and_message_text_within_the_workspace(member_client):
    client, viewer = member_client(Role.VIEWER)
    channel = ChannelFactory(workspace=viewer.workspace)
    by_name = ConversationFactory(channel=channel, contact__name="Lucía Pérez")
    by_profile = ConversationFactory(channel=channel, contact__profile_name="lucia_shop")
    by_wa_id = ConversationFactory(channel=channel, contact__wa_id="5215550001234")
    by_text = MessageFactory(conversation__channel=channel, body="¿Tenéis la talla LUCIA-42?").conversation
    ConversationFactory(channel=channel, contact__name="Marta")
    MessageFactory(conversation__channel=ChannelFactory(), body="lucia in another workspace")

    if connection.vendor == "postgresql":  # accents ignored in names and text (test_search.py)
        assert set(ids(client.get("/api/conversations/?q=lucia"))) == {by_name.pk, by_profile.pk, by_text.pk}
        assert set(ids(client.get("/api/conversations/?q=Lucía"))) == {by_name.pk, by_profile.pk, by_text.pk}
    else:
        assert set(ids(client.get("/api/conversations/?q=lucia"))) == {by_profile.pk, by_text.pk}
        assert ids(client.get("/api/conversations/?q=Lucía")) == [by_name.pk]
    assert ids(client.get("/api/conversations/?q=%2B52155500")) == [by_wa_id.pk]


def test_the_list_costs_the_same_queries_for_one_or_many_conversations(member_client):
    client, viewer = member_client(Role.VIEWER)
    channel = ChannelFactory(workspace=viewer.workspace)
    ConversationFactory(channel=channel, assignee=viewer.user)
    client.get("/api/conversations/")  # warm the login caches

    with CaptureQueriesContext(connection) as one:
        client.get("/api/conversations/")
    ConversationFactory.create_batch(
        4, channel=channel, assignee=MembershipFactory(workspace=viewer.workspace).user
    )
    with CaptureQueriesContext(connection) as five:
        response = client.get("/api/conversations/")

    assert response.json()["count"] == 5
    assert len(five) == len(one)


# --- messages ----------------------------------------------------------------------------------
def test_messages_come_oldest_first_in_pages(member_client):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    first = MessageFactory(conversation=conversation, body="Hola")
    second = MessageFactory(
        conversation=conversation,
        direction="out",
        author="bot",
        body="¡Hola! Soy el asistente virtual.",
        status="failed",
        send_state="failed",
        error_code=131047,
        error_title="Re-engagement message",
        failure_reason="window_closed",
        wamid="",
    )
    third = MessageFactory(conversation=conversation, body="¿Seguís ahí?")
    MessageFactory(conversation=ConversationFactory(channel=conversation.channel), body="other thread")

    page_one = client.get(f"/api/conversations/{conversation.pk}/messages/?page_size=2")
    page_two = client.get(f"/api/conversations/{conversation.pk}/messages/?page_size=2&page=2")

    assert ids(page_one) == [first.pk, second.pk]
    assert ids(page_two) == [third.pk]
    assert page_one.json()["count"] == 3
    assert page_one.json()["results"][1] == {
        "id": second.pk,
        "direction": "out",
        "author": "bot",
        "author_user": None,
        "type": "text",
        "body": "¡Hola! Soy el asistente virtual.",
        "status": "failed",
        "send_state": "failed",
        "error_code": 131047,
        "error_title": "Re-engagement message",
        "failure_reason": "window_closed",
        "created_at": iso(second.created_at),
        "sent_at": None,
        "wamid": "",
        "reply_to_wamid": "",
        "reactions": [],
    }


def test_a_reaction_is_listed_on_the_message_it_reacts_to_not_as_a_message(member_client):
    client, viewer = member_client(Role.VIEWER)
    now = timezone.now()
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    question = MessageFactory(conversation=conversation, body="¿Abrís hoy?")
    answer = outbound_message(
        conversation=conversation, body="Sí, hasta las 20:00.", send_state="sent", wamid="wamid.answer"
    )
    reaction_message(conversation=conversation, to=answer.wamid, emoji="😮", at=now - timedelta(minutes=3))
    # A new reaction replaces the customer's earlier one; an empty one removes it.
    reaction_message(conversation=conversation, to=answer.wamid, emoji="👍", at=now - timedelta(minutes=2))
    reaction_message(conversation=conversation, to=question.wamid, emoji="❤️", at=now - timedelta(minutes=2))
    reaction_message(conversation=conversation, to=question.wamid, emoji="", at=now - timedelta(minutes=1))
    # On a message that is not in this conversation: nowhere to show it but as a message of its own.
    elsewhere = reaction_message(conversation=conversation, to="wamid.not.here", emoji="🙏")

    response = client.get(f"/api/conversations/{conversation.pk}/messages/")

    assert ids(response) == [question.pk, answer.pk, elsewhere.pk]
    assert response.json()["count"] == 3
    rows = response.json()["results"]
    assert rows[0]["reactions"] == []
    assert rows[1]["reactions"] == [
        {"emoji": "👍", "author": "customer", "reacted_at": iso(now - timedelta(minutes=2))}
    ]
    assert (rows[2]["type"], rows[2]["body"], rows[2]["reply_to_wamid"], rows[2]["reactions"]) == (
        "reaction",
        "🙏",
        "wamid.not.here",
        [],
    )


def test_reactions_cost_no_query_per_message(member_client):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))

    def listed_with(reacted: int) -> int:
        for n in range(reacted):
            target = MessageFactory.create(conversation=conversation, body=f"mensaje {n}")
            reaction_message(conversation=conversation, to=target.wamid, emoji="👍")
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/conversations/{conversation.pk}/messages/")
        assert all(row["reactions"][0]["emoji"] == "👍" for row in response.json()["results"])
        return len(queries)

    assert listed_with(1) == listed_with(5)


# --- actions -----------------------------------------------------------------------------------
def test_agent_reply_queues_an_agent_message_and_enqueues_it_after_commit(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace), status=C.OPEN)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/conversations/{conversation.pk}/reply", {"body": "Te atiendo yo, Ana."}, format="json"
        )

    assert response.status_code == 201
    [queued] = response.json()
    message = Message.objects.get(pk=queued["id"])
    assert (message.direction, message.author, message.author_user_id, message.body, message.send_state) == (
        "out",
        "agent",
        agent.user.pk,
        "Te atiendo yo, Ana.",
        "pending",
    )
    assert (queued["send_state"], queued["author"]) == ("pending", "agent")
    assert tasks_captured.ids("outbound.number_send") == [message.channel_id]  # its number's sender is woken
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == (C.HUMAN, agent.user.pk)


def test_a_reply_longer_than_whatsapp_allows_is_queued_in_parts(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace))
    body = ("palabra " * 700).strip()  # 5,599 characters

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/conversations/{conversation.pk}/reply", {"body": body}, format="json")

    parts = response.json()
    assert response.status_code == 201
    assert len(parts) == 2
    assert " ".join(part["body"] for part in parts) == body
    assert tasks_captured.ids("outbound.number_send") == [
        conversation.channel_id
    ]  # one wake-up for both parts, not a task per part


@pytest.mark.parametrize("body", ["", "   ", "x" * (4096 * 4 + 1)])
def test_an_empty_or_oversized_reply_is_refused(member_client, tasks_captured, body):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace))

    response = client.post(f"/api/conversations/{conversation.pk}/reply", {"body": body}, format="json")

    assert response.status_code == 400
    assert not Message.objects.exists()
    assert tasks_captured.ids("outbound.number_send") == []


def test_a_reply_to_a_closed_conversation_is_a_conflict_and_queues_nothing(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace), status=C.CLOSED)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            f"/api/conversations/{conversation.pk}/reply", {"body": "¿Hola?"}, format="json"
        )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conversation_closed"
    assert not Message.objects.exists()
    assert callbacks == []
    assert tasks_captured.ids("outbound.number_send") == []


def test_takeover_then_handback_then_close(member_client):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(
        channel=ChannelFactory(workspace=agent.workspace), status=C.PENDING_HUMAN
    )
    base = f"/api/conversations/{conversation.pk}"

    taken = client.post(f"{base}/takeover")
    conversation.refresh_from_db()
    taken_state = (conversation.status, conversation.assignee_id, conversation.human_activity_at is not None)
    handed = client.post(f"{base}/handback")
    conversation.refresh_from_db()
    handed_state = (conversation.status, conversation.assignee_id)
    closed = client.post(f"{base}/close")
    conversation.refresh_from_db()

    assert [r.status_code for r in (taken, handed, closed)] == [200, 200, 200]
    assert taken_state == (C.HUMAN, agent.user.pk, True)
    assert taken.json()["assignee"]["id"] == agent.user.pk
    assert handed_state == (C.OPEN, None)
    assert handed.json()["assignee"] is None
    assert (conversation.status, closed.json()["status"]) == (C.CLOSED, "closed")
    assert conversation.closed_at is not None
    assert closed.json()["closed_at"] == iso(conversation.closed_at)


@pytest.mark.parametrize("action", ["takeover", "handback"])
def test_taking_over_or_handing_back_a_closed_conversation_is_a_conflict(member_client, action):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace), status=C.CLOSED)

    response = client.post(f"/api/conversations/{conversation.pk}/{action}")

    assert response.status_code == 409
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == (C.CLOSED, None)


def test_read_clears_the_unread_count_and_sends_a_read_receipt_after_commit(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    client, agent = member_client(Role.AGENT)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=agent.workspace), unread_count=3)
    MessageFactory(conversation=conversation)
    last = MessageFactory(conversation=conversation)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/conversations/{conversation.pk}/read")

    assert (response.status_code, response.json()["unread_count"]) == (200, 0)
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    assert tasks_captured.ids("outbound.mark_read") == [last.pk]


def test_a_viewer_reads_but_cannot_act(member_client, tasks_captured):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace), unread_count=1)
    base = f"/api/conversations/{conversation.pk}"

    reads = [client.get(f"{base}/"), client.get(f"{base}/messages/")]
    writes = [
        client.post(f"{base}/reply", {"body": "hola"}, format="json"),
        client.post(f"{base}/takeover"),
        client.post(f"{base}/handback"),
        client.post(f"{base}/close"),
        client.post(f"{base}/read"),
    ]

    assert [r.status_code for r in reads] == [200, 200]
    assert [r.status_code for r in writes] == [403] * 5
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id, conversation.unread_count) == (C.OPEN, None, 1)
    assert not Message.objects.exists()
    assert tasks_captured.calls == []  # no send, no read receipt


def test_another_workspaces_conversation_answers_404_and_is_left_alone(member_client, tasks_captured):
    client, _ = member_client(Role.OWNER)
    foreign = ConversationFactory(channel=ChannelFactory(workspace=WorkspaceFactory()), unread_count=4)
    MessageFactory(conversation=foreign)
    base = f"/api/conversations/{foreign.pk}"

    responses = [
        client.get(f"{base}/"),
        client.get(f"{base}/messages/"),
        client.post(f"{base}/reply", {"body": "hola"}, format="json"),
        client.post(f"{base}/takeover"),
        client.post(f"{base}/handback"),
        client.post(f"{base}/close"),
        client.post(f"{base}/read"),
    ]

    assert [r.status_code for r in responses] == [404] * 7
    foreign.refresh_from_db()
    assert (foreign.status, foreign.assignee_id, foreign.unread_count) == (C.OPEN, None, 4)
    assert Message.objects.filter(direction="out").count() == 0
    assert tasks_captured.ids("outbound.number_send") == []
