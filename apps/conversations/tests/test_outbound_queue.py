"""The outbound queue against the real Cloud transport and the Graph API stand-in."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.events import StatusUpdate
from apps.conversations.models import (
    Contact,
    Conversation,
    ConversationSettings,
    Message,
    SendAttempt,
    SenderLease,
)
from apps.conversations.services import outbound, sender
from apps.conversations.services.ingest import statuses_apply
from apps.conversations.services.outbound import S, message_send
from apps.conversations.services.sweeper import sweep
from apps.conversations.text import split_text
from apps.whatsapp.models import Channel
from chatbot import pacing
from chatbot.exceptions import Conflict

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


@pytest.fixture(autouse=True)
def _own_pacing_folder(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    yield


@pytest.fixture
def paced(shared_clock, graph_standin):
    """Pacing waits pass on the shared clock at once (pass `sleep=paced.advance`), and the Graph
    stand-in stamps each send with that clock: spacing is checked exactly, without waiting for it."""
    graph_standin.clock = shared_clock
    return shared_clock


@pytest.fixture
def channel(cloud_settings):
    return Channel.objects.create(
        workspace=WorkspaceFactory.create(),
        kind="cloud",
        phone_number_id="1001",
        access_token="test-access-token",
        app_secret="test-app-secret",
        send_rate=80,
    )


_numbers = iter(range(10**6))


def conversation_in_window(channel, *, hours_ago: float = 1.0, **contact_fields):
    contact = Contact.objects.create(
        workspace=channel.workspace, wa_id=f"52155{next(_numbers):07d}", **contact_fields
    )
    return Conversation.objects.create(
        workspace=channel.workspace,
        channel=channel,
        contact=contact,
        last_inbound_at=timezone.now() - timedelta(hours=hours_ago),
    )


def enqueue(conversation, body="Hola", **kwargs):
    return outbound.message_enqueue(conversation=conversation, author=Message.Author.BOT, body=body, **kwargs)


def reload(message):
    message.refresh_from_db()
    return message


# --- state machine -----------------------------------------------------------------------------
LEGAL = [
    ("pending", "processing"),
    ("pending", "cancelled"),
    ("processing", "sent"),
    ("processing", "failed"),
    ("failed", "retry"),
    ("retry", "processing"),
    ("retry", "cancelled"),
]
STATES = ["pending", "processing", "sent", "failed", "retry", "cancelled"]


@pytest.mark.parametrize(("source", "target"), [(a, b) for a in STATES for b in STATES if a != b])
def test_every_transition_is_either_legal_or_refused(channel, source, target):
    [message] = enqueue(conversation_in_window(channel))
    Message.objects.filter(pk=message.pk).update(send_state=source)

    if (source, target) in LEGAL:
        assert outbound._transition(message.pk, target, sources=[source]) is True
        assert reload(message).send_state == target
    else:
        with pytest.raises(ValueError, match="illegal transition"):
            outbound._transition(message.pk, target, sources=[source])
        assert reload(message).send_state == source


def test_a_transition_from_the_wrong_current_state_changes_nothing(channel):
    [message] = enqueue(conversation_in_window(channel))

    moved = outbound._transition(message.pk, S.SENT, sources=[S.PROCESSING])

    assert moved is False
    assert reload(message).send_state == S.PENDING


@pytest.mark.parametrize(("state", "allowed"), [(s, s in ("pending", "retry")) for s in STATES])
def test_cancel_only_from_pending_or_retry(channel, state, allowed):
    [message] = enqueue(conversation_in_window(channel))
    Message.objects.filter(pk=message.pk).update(send_state=state)

    if allowed:
        assert outbound.message_cancel(message=message).send_state == S.CANCELLED
    else:
        with pytest.raises(Conflict):
            outbound.message_cancel(message=message)
        assert reload(message).send_state == state


def test_retry_now_revives_a_failed_message_with_a_fresh_budget(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    [message] = enqueue(conversation_in_window(channel))
    Message.objects.filter(pk=message.pk).update(send_state=S.FAILED, attempts=5, max_attempts=5)
    tasks_captured.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        retried = outbound.message_retry_now(message=reload(message))

    assert (retried.send_state, retried.max_attempts) == (S.RETRY, 10)
    assert tasks_captured.ids("outbound.number_send") == [message.channel_id]  # its number's sender is woken
    Message.objects.filter(pk=message.pk).update(send_state=S.SENT)
    with pytest.raises(Conflict):
        outbound.message_retry_now(message=reload(message))


# --- sending --------------------------------------------------------------------------------------
def test_a_queued_message_is_sent_once_with_our_id_as_callback_data(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel), "¿En qué te ayudo?")

    first = message_send(message_id=message.pk)
    second = message_send(message_id=message.pk)

    message = reload(message)
    assert (first.result, second.result) == ("sent", "skipped")
    assert len(graph_standin.sent) == 1
    record = graph_standin.sent[0]
    assert record["to"] == message.contact.wa_id
    assert record["biz_opaque_callback_data"] == str(message.uid)
    assert (message.send_state, message.status, message.attempts) == (S.SENT, "accepted", 1)
    assert message.wamid == record["wamid"]


def test_enqueue_is_idempotent_per_dedupe_key(channel):
    conversation = conversation_in_window(channel)

    first = enqueue(conversation, "uno", dedupe_key="reply:1")
    again = enqueue(conversation, "otro", dedupe_key="reply:1")

    assert [m.pk for m in first] == [m.pk for m in again]
    assert Message.objects.filter(direction="out").count() == 1


def test_long_text_is_split_into_rows_that_keep_every_character(channel):
    text = " ".join(f"Frase número {n}." for n in range(800))

    rows = enqueue(conversation_in_window(channel), text)

    assert len(rows) == len(split_text(text)) > 1
    assert all(len(row.body) <= 4096 for row in rows)
    assert " ".join(row.body for row in rows) == text


def test_each_queued_part_of_a_long_text_is_one_whatsapp_message(channel, graph_standin):
    # The queue and the Cloud transport split with one splitter at one limit: a queued part is never
    # split again, so a send always returns one wamid for one row.
    ConversationSettings.objects.create(workspace=channel.workspace, recipient_burst=10)
    rows = enqueue(conversation_in_window(channel), " ".join(f"Frase número {n}." for n in range(800)))

    results = [message_send(message_id=row.pk, sleep=lambda _seconds: None).result for row in rows]

    assert results == ["sent"] * len(rows) and len(rows) > 1
    assert [record["content"]["body"] for record in graph_standin.sent] == [row.body for row in rows]
    assert [reload(row).wamid for row in rows] == [record["wamid"] for record in graph_standin.sent]


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_one_row_reach_whatsapp_once(channel, graph_standin, postgres):
    [message] = enqueue(conversation_in_window(channel))
    results: list[str] = []

    def send() -> None:
        try:
            results.append(message_send(message_id=message.pk).result)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results).count("sent") == 1
    assert len(graph_standin.sent) == 1


def test_a_lost_answer_is_never_resent_and_is_reconciled_by_the_status_webhook(
    channel, graph_standin, settings
):
    settings.WHATSAPP_SEND_TIMEOUT = 0.3
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.delay_next(1.0)

    lost = message_send(message_id=message.pk)
    again = message_send(message_id=message.pk)

    assert (lost.result, again.result) == ("unknown", "skipped")
    assert reload(message).send_state == S.PROCESSING
    assert len(graph_standin.sent) == 1
    wamid = graph_standin.sent[0]["wamid"]
    statuses_apply(
        channel=channel,
        updates=[
            StatusUpdate(
                wamid=wamid, status="delivered", timestamp=timezone.now(), callback_data=str(message.uid)
            )
        ],
    )
    message = reload(message)
    assert (message.send_state, message.wamid, message.status) == (S.SENT, wamid, "delivered")


def test_transient_errors_retry_with_backoff_then_fail_for_good(channel, graph_standin):
    ConversationSettings.objects.create(workspace=channel.workspace, max_send_attempts=3)
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(131000, http_status=500, count=3)

    outcomes = []
    for _ in range(3):
        outcomes.append(message_send(message_id=message.pk))
        Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # skip the wait

    message = reload(message)
    assert [o.result for o in outcomes] == ["retry", "retry", "failed"]
    assert all(o.countdown >= outbound.BACKOFF_BASE for o in outcomes[:2])
    assert (message.send_state, message.attempts, message.failure_reason_shown) == (
        S.FAILED,
        3,
        "server_error",
    )
    assert graph_standin.sent == []


def test_a_retry_is_not_sent_before_it_is_due(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(131000, http_status=503)
    message_send(message_id=message.pk)

    early = message_send(message_id=message.pk)

    assert early.result == "deferred" and early.countdown > 0
    assert reload(message).send_state == S.RETRY
    assert graph_standin.sent == []


@pytest.mark.parametrize(("code", "reason"), [(131026, "undeliverable"), (132001, "template_invalid")])
def test_permanent_errors_fail_at_once(channel, graph_standin, code, reason):
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(code, http_status=400)

    outcome = message_send(message_id=message.pk)

    message = reload(message)
    assert outcome.result == "failed"
    assert (message.send_state, message.failure_reason_shown, message.error_code, message.attempts) == (
        S.FAILED,
        reason,
        code,
        1,
    )


def test_throughput_error_slows_the_numbers_bucket_and_retries(channel, graph_standin, paced):
    [message] = enqueue(conversation_in_window(channel))
    [other] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(130429, http_status=400)

    outcome = message_send(message_id=message.pk, sleep=paced.advance)
    started = paced.now
    after = message_send(message_id=other.pk, sleep=paced.advance)

    assert outcome.result == "retry"
    assert reload(message).send_state == S.RETRY
    assert after.result == "sent"
    # The number's bucket was held (for every worker): the next send waited it out.
    assert graph_standin.sent[0]["received_at"] - started == pytest.approx(outbound.RATE_LIMIT_HOLD, abs=0.05)
    # The refusal was about the number's pace: the row goes again after the hold, its attempt not used.
    retried = reload(message)
    assert retried.attempts == 0
    assert (retried.next_attempt_at - timezone.now()).total_seconds() <= outbound.RATE_LIMIT_HOLD


def test_refusals_of_one_bunch_hold_the_number_once(channel, graph_standin, paced):
    first, second, third = (enqueue(conversation_in_window(channel))[0] for _ in range(3))
    graph_standin.fail_next(130429, http_status=400)
    graph_standin.fail_next(130429, http_status=400)

    outcomes = [message_send(message_id=m.pk, sleep=paced.advance).result for m in (first, second)]
    started = paced.now
    after = message_send(message_id=third.pk, sleep=paced.advance)

    assert outcomes == ["retry", "retry"]
    assert after.result == "sent"
    # Two refusals, one hold: the holds do not add up (they did: two refusals held it 2 s).
    assert graph_standin.sent[0]["received_at"] - started == pytest.approx(outbound.RATE_LIMIT_HOLD, abs=0.05)


def test_pair_rate_limit_holds_back_only_that_recipient(channel, graph_standin):
    conversation = conversation_in_window(channel)
    [message] = enqueue(conversation)
    [other] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(131056, http_status=400)

    outcome = message_send(message_id=message.pk)
    after = message_send(message_id=other.pk)  # another customer on the same number

    def next_slot(contact_id):  # how long until this customer's bucket has room
        return (
            pacing.pacer()
            .reserve(f"recipient:{channel.pk}:{contact_id}", rate=1000.0, burst=1, max_wait=60)
            .wait
        )

    held, normal = next_slot(conversation.contact_id), next_slot(other.contact_id)

    assert outcome.result == "retry"
    assert reload(message).failure_reason_shown == "recipient_rate_limited"
    assert after.result == "sent"
    # Meta's pair limit: this customer waits about 6 s more than the usual spacing, for every worker.
    assert 5.0 < held - normal <= 6.1


def test_a_huge_retry_after_from_meta_is_capped_like_the_backoff(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(None, http_status=503, retry_after=86_400 * 3)

    outcome = message_send(message_id=message.pk)

    row = reload(message)
    assert outcome.result == "retry"
    assert timedelta(0) < row.next_attempt_at - timezone.now() <= timedelta(seconds=outbound.BACKOFF_MAX)


def test_user_stopped_marketing_marks_the_contact(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(131050, http_status=400)

    message_send(message_id=message.pk)

    assert Contact.objects.get(pk=message.contact_id).opted_out is True
    assert reload(message).failure_reason_shown == "opted_out"


def test_an_invalid_token_marks_the_channel_unhealthy(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel))
    graph_standin.fail_next(190, http_status=401)

    message_send(message_id=message.pk)

    channel.refresh_from_db()
    assert channel.health == Channel.Health.UNHEALTHY
    assert reload(message).failure_reason_shown == "auth"


def test_outside_the_window_free_text_fails_without_calling_whatsapp(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel, hours_ago=25))

    outcome = message_send(message_id=message.pk)

    assert outcome.result == "failed"
    assert reload(message).failure_reason_shown == "window_closed"
    assert graph_standin.sent == []


def test_outside_the_window_the_template_fallback_is_sent(channel, graph_standin):
    template = {"name": "seguimiento", "language": {"code": "es_MX"}, "components": []}
    [message] = enqueue(conversation_in_window(channel, hours_ago=30), template_fallback=template)

    outcome = message_send(message_id=message.pk)

    assert outcome.result == "sent"
    assert graph_standin.sent[0]["type"] == "template"
    assert graph_standin.sent[0]["content"] == template


def test_campaign_messages_never_reach_an_opted_out_contact(channel, graph_standin):
    conversation = conversation_in_window(channel, opted_out=True)
    [message] = outbound.message_enqueue(
        conversation=conversation, author=Message.Author.CAMPAIGN, body="Oferta"
    )

    message_send(message_id=message.pk)

    assert reload(message).failure_reason_shown == "opted_out"
    assert graph_standin.sent == []


def test_messages_of_one_conversation_leave_in_order(channel, graph_standin):
    conversation = conversation_in_window(channel)
    first, second = enqueue(conversation, "uno")[0], enqueue(conversation, "dos")[0]
    graph_standin.fail_next(131000, http_status=500)
    message_send(message_id=first.pk)

    while_first_waits = message_send(message_id=second.pk)
    Message.objects.filter(pk=first.pk).update(next_attempt_at=None)
    message_send(message_id=first.pk)
    message_send(message_id=second.pk)

    assert while_first_waits.result == "deferred"
    assert [r["content"]["body"] for r in graph_standin.sent] == ["uno", "dos"]


def test_statuses_only_move_forward_and_failed_keeps_metas_error(channel, graph_standin):
    [message] = enqueue(conversation_in_window(channel))
    message_send(message_id=message.pk)
    wamid = reload(message).wamid
    now = timezone.now()

    def apply(status, **kw):
        statuses_apply(
            channel=channel, updates=[StatusUpdate(wamid=wamid, status=status, timestamp=now, **kw)]
        )
        return reload(message).status

    assert apply("read") == "read"
    assert apply("delivered") == "read"
    assert apply("sent") == "read"
    assert apply("failed", error_code=131026, error_title="Message undeliverable") == "read"

    [other] = enqueue(conversation_in_window(channel))
    message_send(message_id=other.pk)
    statuses_apply(
        channel=channel,
        updates=[
            StatusUpdate(
                wamid=reload(other).wamid,
                status="failed",
                timestamp=now,
                error_code=131026,
                error_title="Message undeliverable",
            )
        ],
    )
    other = reload(other)
    assert (other.status, other.error_code, other.error_title) == ("failed", 131026, "Message undeliverable")


def test_pacing_n_messages_at_r_per_second_take_n_over_r_seconds(channel, graph_standin, paced, settings):
    """12 sends at 5/s: the stand-in sees them 1/5 s apart (a little more: the headroom under Meta's
    limit). (Slots shared by concurrent workers are covered in tests/test_pacing.py; high rates are
    measured in bench/.)"""
    Channel.objects.filter(pk=channel.pk).update(send_rate=5)
    rows = [enqueue(conversation_in_window(channel), f"m{n}")[0] for n in range(12)]

    results = [message_send(message_id=row.pk, sleep=paced.advance).result for row in rows]

    times = [record["received_at"] for record in graph_standin.sent]
    interval = 1 / (5 * settings.OUTBOUND_RATE_HEADROOM)
    assert results == ["sent"] * 12
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [pytest.approx(interval, abs=1e-3)] * 11


def test_the_recipient_pace_spaces_messages_to_one_customer(channel, graph_standin, paced):
    ConversationSettings.objects.create(
        workspace=channel.workspace, recipient_interval_seconds=0.5, recipient_burst=2
    )
    conversation = conversation_in_window(channel)
    rows = [enqueue(conversation, f"m{n}")[0] for n in range(4)]

    for row in rows:
        assert message_send(message_id=row.pk, sleep=paced.advance).result == "sent"

    times = [record["received_at"] - graph_standin.sent[0]["received_at"] for record in graph_standin.sent]
    # A burst of two (the second only the number's spacing later), then one every 0.5 s.
    assert times == [
        0.0,
        pytest.approx(0.0, abs=0.02),
        pytest.approx(0.5, abs=1e-3),
        pytest.approx(1.0, abs=1e-3),
    ]


def test_the_sweeper_settles_stuck_sends_and_wakes_each_number_without_a_sender_once(channel, tasks_captured):
    conversation = conversation_in_window(channel)
    [stuck] = enqueue(conversation, "stuck")
    lost = [enqueue(conversation_in_window(channel), f"lost {n}")[0] for n in range(3)]
    busy_channel = Channel.objects.create(
        workspace=channel.workspace, kind="cloud", phone_number_id="1002", access_token="t", app_secret="s"
    )
    [busy] = enqueue(conversation_in_window(busy_channel), "busy")
    old = timezone.now() - timedelta(minutes=30)
    assert outbound.message_claim(stuck)  # a send that never came back
    Message.objects.filter(pk=stuck.pk).update(processing_started_at=old, created_at=old)
    assert sender.lease_take(busy_channel.pk, "another-host:1")  # a live sender already has that number
    tasks_captured.calls.clear()

    result = sweep(processing_timeout=timedelta(minutes=10))

    assert result == {"inbound": 0, "outbound": 1, "turns": 0, "unknown_outcome": 1}
    assert tasks_captured.ids("outbound.number_send") == [
        channel.pk
    ]  # one sender for the number, not one task per row
    assert reload(stuck).send_state == S.FAILED and reload(stuck).failure_reason_shown == "unknown_outcome"
    assert [reload(row).send_state for row in [*lost, busy]] == [S.PENDING] * 4


# --- the per-number sender ------------------------------------------------------------------
def bodies_per_recipient(graph_standin) -> dict[str, list[str]]:
    per: dict[str, list[str]] = {}
    for record in graph_standin.sent:
        per.setdefault(record["to"], []).append(record["content"]["body"])
    return per


def run(channel, **kwargs):
    kwargs.setdefault("slice_seconds", 10.0)
    kwargs.setdefault("threads", 1)
    return sender.sender_run(channel_id=channel.pk, **kwargs)


def test_one_sender_sends_the_numbers_queue_at_its_rate_keeping_each_conversation_in_order(
    channel, graph_standin, paced, settings
):
    Channel.objects.filter(pk=channel.pk).update(send_rate=10)
    conversations = [conversation_in_window(channel) for _ in range(3)]
    expected = {}
    for n in range(3):
        for conversation in conversations:
            enqueue(conversation, f"{conversation.contact.wa_id} #{n}")
            expected.setdefault(conversation.contact.wa_id, []).append(f"{conversation.contact.wa_id} #{n}")

    report = run(channel, sleep=paced.advance, clock=paced)

    assert (report.result, report.outcomes, report.retry_in) == ("idle", {"sent": 9}, None)
    assert bodies_per_recipient(graph_standin) == expected
    times = [record["received_at"] for record in graph_standin.sent]
    interval = 1 / (10 * settings.OUTBOUND_RATE_HEADROOM)  # 10/s, a little under Meta's limit
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [pytest.approx(interval, abs=1e-3)] * 8
    assert set(Message.objects.values_list("send_state", flat=True)) == {S.SENT}
    assert not sender.lease_live(channel.pk)  # an idle sender lets go of the number


def test_the_sender_holds_no_claim_while_it_waits_for_a_pacing_slot(channel, graph_standin, paced):
    Channel.objects.filter(pk=channel.pk).update(send_rate=5)
    rows = [enqueue(conversation_in_window(channel), f"m{n}")[0] for n in range(4)]
    claimed_while_sleeping: list[int] = []

    def sleep(seconds: float) -> None:
        claimed_while_sleeping.append(Message.objects.filter(send_state=S.PROCESSING).count())
        paced.advance(seconds)

    report = run(channel, sleep=sleep, clock=paced)

    assert report.outcomes == {"sent": 4}
    assert len(claimed_while_sleeping) >= 3 and set(claimed_while_sleeping) == {0}
    assert [reload(row).attempts for row in rows] == [1, 1, 1, 1]


def test_a_second_sender_on_the_same_number_exits_and_sends_nothing(channel, graph_standin):
    rows = [enqueue(conversation_in_window(channel), f"m{n}")[0] for n in range(3)]
    assert sender.lease_take(channel.pk, "other-host:42:abc")

    report = run(channel)

    assert (report.result, report.outcomes) == ("busy", {})
    assert graph_standin.sent == []
    assert [reload(row).send_state for row in rows] == [S.PENDING] * 3
    assert SenderLease.objects.get(channel_id=channel.pk).holder == "other-host:42:abc"


def test_a_killed_senders_number_is_taken_over_and_its_in_flight_send_is_never_repeated(
    channel, graph_standin
):
    # Given a sender that died mid-batch: its lease expired, one row claimed (it may have reached
    # Meta), the rest of the batch never claimed.
    conversation = conversation_in_window(channel)
    [in_flight] = enqueue(conversation, "en vuelo")
    [after_it] = enqueue(conversation, "después")
    others = [enqueue(conversation_in_window(channel), f"otro {n}")[0] for n in range(3)]
    Message.objects.filter(pk=in_flight.pk).update(
        send_state=S.PROCESSING, processing_started_at=timezone.now(), attempts=1
    )
    SenderLease.objects.create(channel_id=channel.pk, holder="dead:1:x", expires_at=timezone.now())

    report = run(channel)

    assert (report.result, report.outcomes) == ("idle", {"sent": 3})
    assert sorted(r["content"]["body"] for r in graph_standin.sent) == ["otro 0", "otro 1", "otro 2"]
    assert reload(in_flight).send_state == S.PROCESSING  # unknown outcome: left to the webhook/sweeper
    assert reload(after_it).send_state == S.PENDING  # its conversation keeps its order
    assert [reload(row).attempts for row in others] == [1, 1, 1]


def test_a_retried_send_goes_out_when_due_and_holds_back_its_conversation_until_then(channel, graph_standin):
    conversation = conversation_in_window(channel)
    enqueue(conversation, "uno")
    enqueue(conversation, "dos")
    graph_standin.fail_next(131000, http_status=500, retry_after=1)

    first = run(channel)
    assert (first.result, first.outcomes, graph_standin.sent) == ("idle", {"retry": 1}, [])
    assert first.retry_in is not None and 0.5 <= first.retry_in <= 1.0  # the task's countdown
    # The countdown passes (moved back on the row rather than waited for); a send now finds it due.
    Message.objects.filter(send_state=S.RETRY).update(
        next_attempt_at=F("next_attempt_at") - timedelta(seconds=first.retry_in)
    )
    second = run(channel)

    assert (second.result, second.outcomes) == ("idle", {"sent": 2})
    assert [r["content"]["body"] for r in graph_standin.sent] == ["uno", "dos"]
    posts = [r for r in graph_standin.requests if r["method"] == "POST"]
    assert len(posts) == 3


def test_a_cancelled_row_is_not_sent(channel, graph_standin):
    [kept] = enqueue(conversation_in_window(channel), "sí")
    [dropped] = enqueue(conversation_in_window(channel), "no")
    outbound.message_cancel(message=dropped)
    report = run(channel)

    assert report.outcomes == {"sent": 1}
    assert [r["content"]["body"] for r in graph_standin.sent] == ["sí"]
    assert (reload(kept).send_state, reload(dropped).send_state) == (S.SENT, S.CANCELLED)


def test_enqueueing_wakes_the_number_only_when_it_has_no_live_sender(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    conversation = conversation_in_window(channel)
    tasks_captured.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(conversation, "x" * 5000)  # two rows, one wake-up
    assert tasks_captured.ids("outbound.number_send") == [channel.pk]

    sender.lease_take(channel.pk, "live:1:x")
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(conversation, "otra")
    assert tasks_captured.ids("outbound.number_send") == [channel.pk]  # the live sender will find it

    SenderLease.objects.filter(channel_id=channel.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        enqueue(conversation, "y otra")
    assert tasks_captured.ids("outbound.number_send") == [channel.pk, channel.pk]


@pytest.mark.django_db(transaction=True)
def test_with_deliveries_in_flight_every_row_is_sent_exactly_once_and_in_order(
    postgres, channel, graph_standin, tasks_captured, monkeypatch
):
    """Threads each on their own connection: PostgreSQL (on SQLite a sender sends one at a time)."""
    Channel.objects.filter(pk=channel.pk).update(send_rate=200)
    conversations = [conversation_in_window(channel) for _ in range(10)]
    expected: dict[str, list[str]] = {}
    for n in range(4):
        for conversation in conversations:
            body = f"{conversation.contact.wa_id} #{n}"
            enqueue(conversation, body)
            expected.setdefault(conversation.contact.wa_id, []).append(body)

    claim_many = outbound.message_claim_many
    groups: list[int] = []

    def claim_and_count(messages):
        groups.append(len(messages))
        return claim_many(messages)

    monkeypatch.setattr(outbound, "message_claim_many", claim_and_count)

    report = run(channel, threads=8)

    assert (report.result, report.outcomes) == ("idle", {"sent": 40})
    assert bodies_per_recipient(graph_standin) == expected
    assert len([r for r in graph_standin.requests if r["method"] == "POST"]) == 40
    assert sum(groups) == 40 and max(groups) > 1  # claimed in groups, each conversation still in order


@pytest.mark.django_db(transaction=True)
def test_accepted_sends_are_recorded_in_groups_and_a_conversations_next_row_waits_for_its_record(
    postgres, channel, graph_standin, tasks_captured, monkeypatch
):
    Channel.objects.filter(pk=channel.pk).update(send_rate=200)
    monkeypatch.setattr(sender, "RECORD_SPAN", 0.2)  # slow records: the sender must wait for them
    conversations = [conversation_in_window(channel) for _ in range(10)]
    expected: dict[str, list[str]] = {}
    for n in range(3):
        for conversation in conversations:
            body = f"{conversation.contact.wa_id} #{n}"
            enqueue(conversation, body)
            expected.setdefault(conversation.contact.wa_id, []).append(body)
    record_many = outbound.sent_record_many
    groups: list[int] = []

    def record_and_count(sent):
        groups.append(len(sent))
        record_many(sent)

    monkeypatch.setattr(outbound, "sent_record_many", record_and_count)

    report = run(channel, threads=8)

    assert (report.result, report.outcomes) == ("idle", {"sent": 30})
    assert bodies_per_recipient(graph_standin) == expected
    assert sum(groups) == 30 and max(groups) > 1
    assert set(Message.objects.values_list("send_state", "status")) == {(S.SENT, "accepted")}
    assert not SendAttempt.objects.exclude(outcome=SendAttempt.Outcome.ACCEPTED).exists()


def test_a_group_whose_record_fails_is_recorded_one_by_one(caplog):
    written: list[list[int]] = []

    def write(group):
        if len(group) > 1 or group[0][0].pk == 2:
            raise RuntimeError("bad row")
        written.append([message.pk for message, _ in group])

    recorder = sender._Recorder(write, span=0.2, most=10)
    for pk in (1, 2, 3):
        recorder.add(Message(pk=pk), f"wamid.{pk}")
    assert recorder.pending() == 3
    recorder.close()

    assert written == [[1], [3]]  # the group failed; each row alone, the bad one logged and left
    assert recorder.pending() == 0
    assert "recording the send of message 2 failed" in caplog.text


class _Killed(BaseException):
    """The sender's process dying (not an Exception: nothing in the sender may catch it)."""


def test_a_group_claimed_by_a_sender_that_dies_is_never_sent_and_the_rest_goes_out_once_in_order(
    channel, graph_standin, monkeypatch
):
    Channel.objects.filter(pk=channel.pk).update(send_rate=200)
    conversations = [conversation_in_window(channel) for _ in range(4)]
    queued = {
        c.contact.wa_id: [enqueue(c, f"{c.contact.wa_id} #{n}")[0].body for n in range(3)]
        for c in conversations
    }
    claim_many = outbound.message_claim_many

    def claim_then_die(messages):
        claim_many(messages)
        raise _Killed

    monkeypatch.setattr(outbound, "message_claim_many", claim_then_die)
    # Given a sender that claimed its first group (the four conversations' heads) and died before sending.
    with pytest.raises(_Killed):
        run(channel, threads=4)
    monkeypatch.setattr(outbound, "message_claim_many", claim_many)
    claimed = set(Message.objects.filter(send_state=S.PROCESSING).values_list("body", flat=True))
    assert claimed == {bodies[0] for bodies in queued.values()} and graph_standin.sent == []

    # When the sweeper settles the claims (their outcome is unknown to us) and a new sender runs.
    assert outbound.stuck_processing_settle(older_than=timedelta(0)) == 4
    report = run(channel)

    # Then the claimed rows were never sent, nor re-sent; the rest went out once each, in order.
    assert (report.result, report.outcomes) == ("idle", {"sent": 8})
    assert bodies_per_recipient(graph_standin) == {wa_id: bodies[1:] for wa_id, bodies in queued.items()}
    assert (
        set(Message.objects.filter(send_attempts__reason="unknown_outcome").values_list("body", flat=True))
        == claimed
    )


def test_the_send_window_holds_an_unpaced_bunch_under_the_numbers_one_second_limit(
    channel, graph_standin, monkeypatch, settings
):
    """Even if every pacing slot came at once, no 1 s at the stand-in sees more than the rate. With
    the slack above any answer's time, a token comes back only 1 s after its send's answer: strict."""
    settings.OUTBOUND_WINDOW_SLACK = 30.0
    Channel.objects.filter(pk=channel.pk).update(send_rate=10)
    graph_standin.set_rate_limit(10)
    rows = [enqueue(conversation_in_window(channel), f"m{n}")[0] for n in range(25)]
    monkeypatch.setattr(outbound, "pace_many", lambda group, *_args: [(m, 0.0) for m in group])

    report = run(channel)

    assert (report.result, report.outcomes) == ("idle", {"sent": 25})  # no 130429, so no retry
    assert [reload(row).attempts for row in rows] == [1] * 25
    times = sorted(record["received_at"] for record in graph_standin.sent)
    assert times[10] - times[0] >= 1.0 and times[20] - times[10] >= 1.0


def test_a_send_windows_first_sends_return_their_token_only_once_answered():
    window = sender.SendWindow(1, slack=0.0, period=0.2)  # cold: the first `limit` (1) send
    first = window.send()
    first.__enter__()
    started: list[float] = []

    def second() -> None:
        with window.send():
            started.append(time.monotonic())

    worker = threading.Thread(target=second)
    worker.start()
    worker.join(0.4)  # far past start + period + slack
    blocked = worker.is_alive()
    answered = time.monotonic()
    first.__exit__(None, None, None)
    worker.join(5)

    assert blocked  # a warm token would have come back after 0.2 s
    assert started and started[0] - answered >= 0.2


def test_a_send_window_spaces_starts_that_fell_behind():
    window = sender.SendWindow(4, slack=0.0, period=0.2, cold=0)
    starts = []
    for _ in range(4):  # four sends due at once, as after a stall
        with window.send():
            starts.append(time.monotonic())

    # Lower bounds only: at least period / limit apart, never a bunch.
    assert all(b - a >= 0.05 - 1e-3 for a, b in zip(starts, starts[1:], strict=False))


def test_a_send_window_returns_a_token_a_period_after_the_answer_or_after_start_plus_slack():
    window = sender.SendWindow(2, slack=0.05, period=0.3, cold=0)
    started = time.monotonic()
    with window.send():
        pass  # answered at once: its token is back 0.3 s later
    slow = window.send()
    slow.__enter__()  # no answer yet: its token is back 0.3 + 0.05 s after it started

    with window.send():
        third = time.monotonic() - started
    with window.send():
        fourth = time.monotonic() - started
    slow.__exit__(None, None, None)

    # Lower bounds only: the window never lets a send start early; how late a loaded machine starts it
    # is not the window's doing.
    assert 0.3 <= third
    assert 0.35 <= fourth
