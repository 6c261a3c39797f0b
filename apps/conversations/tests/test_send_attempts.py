"""Every outbound send is a SendAttempt row: saved before the transport is called, settled with the
send's outcome (accepted, retry, failed, unknown), in the claim's and the outcome's own statements."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations.events import StatusUpdate
from apps.conversations.models import Contact, Conversation, ConversationSettings, Message, SendAttempt
from apps.conversations.services import outbound, sender
from apps.conversations.services.ingest import statuses_apply
from apps.conversations.services.outbound import S, message_send
from apps.live.models import LiveEvent
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]
A = SendAttempt.Outcome


@pytest.fixture(autouse=True)
def _pacer_files(settings, tmp_path):
    settings.DATA_DIR = tmp_path  # the pacer's files


@pytest.fixture
def channel(cloud_settings):
    return ChannelFactory.create(access_token="test-access-token", app_secret="test-app-secret", send_rate=80)


_numbers = iter(range(10**6))


def queued(channel, body="Hola", *, hours_ago: float = 1.0) -> Message:
    contact = Contact.objects.create(workspace=channel.workspace, wa_id=f"52166{next(_numbers):07d}")
    conversation = Conversation.objects.create(
        workspace=channel.workspace,
        channel=channel,
        contact=contact,
        last_inbound_at=timezone.now() - timedelta(hours=hours_ago),
    )
    [message] = outbound.message_enqueue(conversation=conversation, author=Message.Author.BOT, body=body)
    return message


def attempts_of(message: Message) -> list[tuple[int, str, str, int | None]]:
    return list(
        SendAttempt.objects.filter(message=message)
        .order_by("number")
        .values_list("number", "outcome", "reason", "error_code")
    )


def test_an_accepted_send_is_one_attempt_with_whatsapps_id(channel, graph_standin):
    message = queued(channel)

    assert message_send(message_id=message.pk).result == "sent"

    message.refresh_from_db()
    [attempt] = SendAttempt.objects.filter(message=message)
    assert (attempt.number, attempt.outcome, attempt.reason, attempt.detail) == (1, A.ACCEPTED, "", "")
    assert attempt.wamid == message.wamid == graph_standin.sent[0]["wamid"]
    assert attempt.workspace_id == message.workspace_id
    assert attempt.started_at <= attempt.finished_at and attempt.duration is not None
    assert (message.failure_reason, message.last_error) == ("", "")  # the message keeps no send detail


def test_the_attempt_is_saved_in_flight_before_the_transport_is_called(channel, graph_standin):
    message = queued(channel)
    assert outbound.message_claim(message)
    seen: list[list[tuple[int, str, str, int | None]]] = []

    @contextmanager
    def gate():
        seen.append(attempts_of(message))  # what the database holds while the call is made
        yield

    outbound.message_deliver(message, gate=gate())

    assert seen == [[(1, A.IN_FLIGHT, "", None)]]
    assert attempts_of(message) == [(1, A.ACCEPTED, "", None)]


def test_a_transient_error_is_a_retry_attempt_and_the_next_send_a_second_one(channel, graph_standin):
    message = queued(channel)
    graph_standin.fail_next(131000, http_status=500)

    assert message_send(message_id=message.pk).result == "retry"
    message.refresh_from_db()
    assert (message.failure_reason_shown, message.send_state) == ("server_error", S.RETRY)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # the backoff passes
    assert message_send(message_id=message.pk).result == "sent"

    assert attempts_of(message) == [(1, A.RETRY, "server_error", 131000), (2, A.ACCEPTED, "", None)]
    assert SendAttempt.objects.get(message=message, number=1).detail != ""
    message.refresh_from_db()
    assert (message.attempts, message.failure_reason_shown, message.last_error_shown) == (2, "", "")


def test_a_permanent_error_is_a_failed_attempt_and_the_message_keeps_no_copy_of_it(channel, graph_standin):
    message = queued(channel)
    graph_standin.fail_next(131026, http_status=400)

    assert message_send(message_id=message.pk).result == "failed"

    assert attempts_of(message) == [(1, A.FAILED, "undeliverable", 131026)]
    message.refresh_from_db()
    assert (message.send_state, message.status, message.error_code) == (S.FAILED, "failed", 131026)
    assert (message.failure_reason, message.last_error) == ("", "")
    assert message.failure_reason_shown == "undeliverable" and message.last_error_shown != ""


def test_the_last_allowed_transient_error_fails_the_attempt_for_good(channel, graph_standin):
    ConversationSettings.objects.create(workspace=channel.workspace, max_send_attempts=2)
    message = queued(channel)
    graph_standin.fail_next(None, http_status=503, count=2)

    for _ in range(2):
        message_send(message_id=message.pk)
        Message.objects.filter(pk=message.pk).update(next_attempt_at=None)

    assert attempts_of(message) == [(1, A.RETRY, "server_error", None), (2, A.FAILED, "server_error", None)]


def test_a_message_refused_before_calling_out_still_records_its_attempt(channel, graph_standin):
    message = queued(channel, hours_ago=25)  # the 24-hour window closed, no template to fall back on

    assert message_send(message_id=message.pk).result == "failed"

    [attempt] = SendAttempt.objects.filter(message=message)
    assert (attempt.outcome, attempt.reason, attempt.detail) == (
        A.FAILED,
        "window_closed",
        "not sent: window_closed",
    )
    assert graph_standin.sent == []


def test_a_lost_answer_is_an_unknown_attempt_settled_by_the_status_webhook(channel, graph_standin, settings):
    settings.WHATSAPP_SEND_TIMEOUT = 0.3
    message = queued(channel)
    graph_standin.delay_next(1.0)

    assert message_send(message_id=message.pk).result == "unknown"

    [attempt] = SendAttempt.objects.filter(message=message)
    assert (attempt.outcome, attempt.reason, attempt.wamid) == (A.UNKNOWN, "timeout", "")
    assert attempt.detail.startswith("outcome unknown: ") and attempt.finished_at is not None
    wamid = graph_standin.sent[0]["wamid"]
    statuses_apply(
        channel=channel,
        updates=[
            StatusUpdate(wamid=wamid, status="sent", timestamp=timezone.now(), callback_data=str(message.uid))
        ],
    )
    attempt.refresh_from_db()
    message.refresh_from_db()
    assert (attempt.outcome, attempt.wamid, message.send_state) == (A.ACCEPTED, wamid, S.SENT)
    assert message.failure_reason_shown == ""


def test_an_unknown_outcome_left_unreconciled_is_settled_by_the_sweeper(channel, graph_standin, settings):
    settings.WHATSAPP_SEND_TIMEOUT = 0.3
    message = queued(channel)
    graph_standin.delay_next(1.0)
    message_send(message_id=message.pk)

    assert outbound.stuck_processing_settle(older_than=timedelta(0)) == 1

    [attempt] = SendAttempt.objects.filter(message=message)
    assert (attempt.outcome, attempt.reason) == (A.UNKNOWN, "unknown_outcome")
    assert attempt.detail.startswith("outcome unknown: ")  # the transport's own words are kept
    message.refresh_from_db()
    assert (message.send_state, message.failure_reason_shown) == (S.FAILED, "unknown_outcome")
    assert len(graph_standin.sent) == 1  # and it was not sent again


class _Killed(BaseException):
    """The sender's process dying (not an Exception: nothing in the sender may catch it)."""


def test_a_sender_killed_mid_send_leaves_its_attempts_in_flight_until_the_sweeper(
    channel, graph_standin, monkeypatch
):
    rows = [queued(channel, f"m{n}") for n in range(3)]
    claim_many = outbound.message_claim_many

    def claim_then_die(messages):
        claim_many(messages)
        raise _Killed

    monkeypatch.setattr(outbound, "message_claim_many", claim_then_die)
    with pytest.raises(_Killed):  # four threads: the three heads are claimed as one group
        sender.sender_run(channel_id=channel.pk, slice_seconds=10.0, threads=4)

    assert [attempts_of(row) for row in rows] == [[(1, A.IN_FLIGHT, "", None)]] * 3
    assert graph_standin.sent == []
    assert outbound.stuck_processing_settle(older_than=timedelta(0)) == 3
    settled = SendAttempt.objects.filter(message__in=rows)
    assert {(a.outcome, a.reason, a.detail) for a in settled} == {
        (A.UNKNOWN, "unknown_outcome", outbound.STUCK_DETAIL)
    }
    assert all(a.finished_at is not None for a in settled)


def test_the_sender_claims_a_group_and_saves_its_attempts_together(channel, graph_standin, monkeypatch):
    rows = [queued(channel, f"m{n}") for n in range(4)]
    claim_many = outbound.message_claim_many
    after_claims: list[int] = []

    def claim_and_look(messages):
        claimed = claim_many(messages)
        after_claims.append(
            SendAttempt.objects.filter(message__in=claimed, outcome=A.IN_FLIGHT).count() - len(claimed)
        )
        return claimed

    monkeypatch.setattr(outbound, "message_claim_many", claim_and_look)
    report = sender.sender_run(channel_id=channel.pk, slice_seconds=10.0, threads=1)

    assert report.outcomes == {"sent": 4}
    assert after_claims and set(after_claims) == {0}  # every claimed row had its attempt at once
    assert [attempts_of(row) for row in rows] == [[(1, A.ACCEPTED, "", None)]] * 4


def test_a_claim_that_loses_the_row_records_no_attempt(channel):
    message = queued(channel)
    outbound.message_cancel(message=message)

    assert outbound.message_claim_many([message]) == []
    assert attempts_of(message) == []


def test_claiming_and_recording_sends_take_a_fixed_number_of_statements_on_postgresql_however_many(
    postgres, channel, django_assert_num_queries
):
    rows = [queued(channel, f"m{n}") for n in range(3)]

    with django_assert_num_queries(1):
        claimed = outbound.message_claim_many(rows)
    with CaptureQueriesContext(connection) as recorded:
        outbound.sent_record_many([(claimed[0], "wamid.x"), (claimed[1], "wamid.y")])

    # The messages, then their attempts (the order a status webhook locks them in: no deadlock), then
    # the live events; the rest is the transaction's savepoint.
    writes = [q["sql"].split()[:2] for q in recorded.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert writes == [
        ["WITH", "v"],
        ["WITH", "v"],
        ["INSERT", "INTO"],
    ]
    updates = [q["sql"] for q in recorded.captured_queries if q["sql"].startswith("WITH")]
    assert [connection.ops.quote_name(model._meta.db_table) for model in (Message, SendAttempt)] == [
        sql.split(" SET ")[0].rsplit(" ", 1)[-1] for sql in updates
    ]

    assert len(claimed) == 3
    assert [attempts_of(row) for row in rows] == [
        [(1, A.ACCEPTED, "", None)],
        [(1, A.ACCEPTED, "", None)],
        [(1, A.IN_FLIGHT, "", None)],
    ]
    assert [SendAttempt.objects.get(message=row).wamid for row in rows] == ["wamid.x", "wamid.y", ""]
    assert [
        (m.send_state, m.wamid) for m in Message.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")
    ] == [
        (S.SENT, "wamid.x"),
        (S.SENT, "wamid.y"),
        (S.PROCESSING, ""),
    ]
    assert sorted(
        LiveEvent.objects.filter(kind="status").values_list("payload__message_id", flat=True)
    ) == sorted([rows[0].pk, rows[1].pk])


def test_recording_sends_together_keeps_what_a_status_webhook_already_settled(channel, graph_standin):
    rows = [queued(channel, f"m{n}") for n in range(2)]
    claimed = outbound.message_claim_many(rows)
    # Meta's "delivered" for the first send arrives before the send's own answer is recorded.
    statuses_apply(
        channel=channel,
        updates=[
            StatusUpdate(
                wamid="wamid.early",
                status="delivered",
                timestamp=timezone.now(),
                callback_data=str(rows[0].uid),
            )
        ],
    )

    outbound.sent_record_many([(claimed[0], "wamid.early"), (claimed[1], "wamid.late")])

    first, second = Message.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")
    assert (first.send_state, first.status, first.wamid) == (S.SENT, "delivered", "wamid.early")
    assert (second.send_state, second.status, second.wamid) == (S.SENT, "accepted", "wamid.late")
    assert attempts_of(first) == attempts_of(second) == [(1, A.ACCEPTED, "", None)]


def test_the_message_admin_shows_its_attempts(client, channel, graph_standin):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "x"))
    message = queued(channel)
    graph_standin.fail_next(131026, http_status=400)
    message_send(message_id=message.pk)

    page = client.get(f"/admin/conversations/message/{message.pk}/change/")

    assert page.status_code == 200
    assert "undeliverable" in page.content.decode()
    assert "Failed for good" in page.content.decode()
