from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Message, SendAttempt
from apps.conversations.tests.factories import (
    ChannelFactory,
    ConversationFactory,
    MessageFactory,
    outbound_message,
)

pytestmark = pytest.mark.django_db

S = Message.SendState
QUEUE_LIST_QUERIES = 4  # as before send attempts had their own table: a page never costs a query per row


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def state_of(message: Message) -> str:
    message.refresh_from_db()
    return message.send_state


def test_the_queue_lists_outbound_rows_newest_first_with_their_attempts(member_client):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    retry_at = timezone.now() + timedelta(minutes=2)
    sent = outbound_message(conversation=conversation, send_state=S.SENT, wamid="wamid.out.1", attempts=1)
    waiting = outbound_message(
        conversation=conversation,
        send_state=S.RETRY,
        attempts=2,
        max_attempts=5,
        next_attempt_at=retry_at,
        failure_reason="rate_limited",
        last_error="(#130429) Rate limit hit",
        error_code=130429,
    )
    MessageFactory(conversation=conversation)  # inbound: not part of the queue
    outbound_message(conversation=ConversationFactory())  # another workspace

    response = client.get("/api/queue/")

    assert ids(response) == [waiting.pk, sent.pk]
    row = response.json()["results"][0]
    assert {
        key: row[key]
        for key in (
            "conversation",
            "channel",
            "author",
            "send_state",
            "status",
            "attempts",
            "max_attempts",
            "failure_reason",
            "last_error",
            "error_code",
        )
    } == {
        "conversation": conversation.pk,
        "channel": conversation.channel_id,
        "author": "bot",
        "send_state": "retry",
        "status": "queued",
        "attempts": 2,
        "max_attempts": 5,
        "failure_reason": "rate_limited",
        "last_error": "(#130429) Rate limit hit",
        "error_code": 130429,
    }
    assert row["next_attempt_at"] is not None


def test_the_queue_filters_by_state_channel_and_conversation(member_client):
    client, viewer = member_client(Role.VIEWER)
    first = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    second = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    failed = outbound_message(conversation=first, send_state=S.FAILED)
    pending_first = outbound_message(conversation=first)
    pending_second = outbound_message(conversation=second)

    assert ids(client.get("/api/queue/?state=failed")) == [failed.pk]
    assert ids(client.get("/api/queue/?state=pending")) == [pending_second.pk, pending_first.pk]
    assert ids(client.get(f"/api/queue/?channel={second.channel_id}")) == [pending_second.pk]
    assert ids(client.get(f"/api/queue/?conversation={first.pk}&state=pending")) == [pending_first.pk]
    assert client.get("/api/queue/?state=lost").status_code == 400


def test_a_supervisor_cancels_a_pending_message(member_client):
    client, supervisor = member_client(Role.SUPERVISOR)
    message = outbound_message(conversation=ConversationFactory(channel__workspace=supervisor.workspace))

    response = client.post(f"/api/queue/{message.pk}/cancel")

    assert response.status_code == 200
    assert response.json()["send_state"] == "cancelled"
    assert state_of(message) == S.CANCELLED


@pytest.mark.parametrize("state", [S.PROCESSING, S.SENT, S.FAILED, S.CANCELLED])
def test_cancelling_a_message_past_waiting_is_a_conflict(member_client, state):
    client, supervisor = member_client(Role.SUPERVISOR)
    message = outbound_message(
        conversation=ConversationFactory(channel__workspace=supervisor.workspace), send_state=state
    )

    response = client.post(f"/api/queue/{message.pk}/cancel")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "illegal_transition"
    assert state_of(message) == state


def test_retrying_a_failed_message_queues_it_now_with_a_fresh_budget(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    client, supervisor = member_client(Role.SUPERVISOR)
    message = outbound_message(
        conversation=ConversationFactory(channel__workspace=supervisor.workspace),
        send_state=S.FAILED,
        attempts=5,
        max_attempts=5,
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/queue/{message.pk}/retry")

    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.send_state, message.attempts, message.max_attempts) == (S.RETRY, 5, 10)
    assert message.next_attempt_at is not None
    assert response.json()["send_state"] == "retry"
    assert tasks_captured.ids("outbound.number_send") == [message.channel_id]  # its number's sender is woken


@pytest.mark.parametrize("state", [S.PENDING, S.PROCESSING, S.SENT, S.CANCELLED])
def test_retrying_a_message_that_has_not_failed_is_a_conflict(member_client, tasks_captured, state):
    client, supervisor = member_client(Role.SUPERVISOR)
    message = outbound_message(
        conversation=ConversationFactory(channel__workspace=supervisor.workspace), send_state=state
    )

    response = client.post(f"/api/queue/{message.pk}/retry")

    assert response.status_code == 409
    assert state_of(message) == state
    assert tasks_captured.ids("outbound.number_send") == []


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT])
def test_below_supervisor_sees_the_queue_but_cannot_cancel_or_retry(member_client, tasks_captured, role):
    client, member = member_client(role)
    conversation = ConversationFactory(channel__workspace=member.workspace)
    pending = outbound_message(conversation=conversation)
    failed = outbound_message(conversation=conversation, send_state=S.FAILED)

    listed = client.get("/api/queue/")
    cancel = client.post(f"/api/queue/{pending.pk}/cancel")
    retry = client.post(f"/api/queue/{failed.pk}/retry")

    assert listed.status_code == 200
    assert (cancel.status_code, retry.status_code) == (403, 403)
    assert (state_of(pending), state_of(failed)) == (S.PENDING, S.FAILED)
    assert tasks_captured.ids("outbound.number_send") == []


def test_another_workspaces_queue_row_answers_404_and_is_left_alone(member_client, tasks_captured):
    client, _ = member_client(Role.OWNER)
    foreign = ConversationFactory(channel=ChannelFactory(workspace=WorkspaceFactory()))
    pending = outbound_message(conversation=foreign)
    failed = outbound_message(conversation=foreign, send_state=S.FAILED)

    cancel = client.post(f"/api/queue/{pending.pk}/cancel")
    retry = client.post(f"/api/queue/{failed.pk}/retry")

    assert (cancel.status_code, retry.status_code) == (404, 404)
    assert (state_of(pending), state_of(failed)) == (S.PENDING, S.FAILED)
    assert tasks_captured.ids("outbound.number_send") == []


def test_an_inbound_message_is_not_a_queue_row(member_client):
    client, supervisor = member_client(Role.SUPERVISOR)
    inbound = MessageFactory(conversation__channel__workspace=supervisor.workspace)

    assert client.post(f"/api/queue/{inbound.pk}/cancel").status_code == 404


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/queue/", "channel"), ("/api/queue/", "conversation"), ("/api/conversations/", "channel")],
)
def test_an_id_filter_beyond_any_database_id_is_a_400_not_a_server_error(member_client, path, name):
    # Found by schemathesis: ?conversation=438013517109655033085952 overflowed the query (500).
    client, _ = member_client(Role.VIEWER)

    response = client.get(path, {name: 2**63})

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"


def _attempt(message: Message, number: int, outcome: str, **fields: object) -> SendAttempt:
    return SendAttempt.objects.create(
        workspace_id=message.workspace_id,
        message=message,
        number=number,
        started_at=timezone.now(),
        outcome=outcome,
        **fields,
    )


def test_a_queue_items_reason_and_error_come_from_its_last_send_attempt(member_client):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    waiting = outbound_message(conversation=conversation, send_state=S.RETRY, attempts=2)
    _attempt(waiting, 1, SendAttempt.Outcome.RETRY, reason="server_error", detail="(#131000) first")
    _attempt(waiting, 2, SendAttempt.Outcome.RETRY, reason="rate_limited", detail="(#130429) Rate limit hit")
    sent = outbound_message(conversation=conversation, send_state=S.SENT, attempts=2)
    _attempt(sent, 1, SendAttempt.Outcome.RETRY, reason="server_error", detail="(#131000) down")
    _attempt(sent, 2, SendAttempt.Outcome.ACCEPTED, wamid="wamid.2")

    rows = {row["id"]: row for row in client.get("/api/queue/").json()["results"]}

    assert (rows[waiting.pk]["failure_reason"], rows[waiting.pk]["last_error"]) == (
        "rate_limited",
        "(#130429) Rate limit hit",
    )
    assert (rows[sent.pk]["failure_reason"], rows[sent.pk]["last_error"]) == ("", "")
    assert rows[waiting.pk]["attempts"] == 2


@pytest.mark.parametrize("rows", [1, 6])
def test_listing_the_queue_costs_the_same_queries_however_many_rows_and_attempts(
    member_client, django_assert_num_queries, rows
):
    client, viewer = member_client(Role.VIEWER)
    conversation = ConversationFactory(channel=ChannelFactory(workspace=viewer.workspace))
    for _ in range(rows):
        message = outbound_message(conversation=conversation, send_state=S.RETRY, attempts=2)
        _attempt(message, 1, SendAttempt.Outcome.RETRY, reason="server_error")
        _attempt(message, 2, SendAttempt.Outcome.RETRY, reason="timeout")
    client.get("/api/queue/")  # the first request loads what is cached per process

    with django_assert_num_queries(QUEUE_LIST_QUERIES):
        response = client.get("/api/queue/")

    assert len(response.json()["results"]) == rows
    assert {row["failure_reason"] for row in response.json()["results"]} == {"timeout"}
