"""The Graph API behind a shared circuit breaker: an outage pauses calls instead of hammering Meta,
costs queued messages none of their attempts, and shows in /metrics."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import outbound
from apps.conversations.transport import REASON_CIRCUIT_OPEN, OutboundRequest, SendError
from apps.whatsapp.cloud import CloudTransport, graph_breaker

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(cloud_settings):
    cloud_settings.WHATSAPP_BREAKER_FAILURES = 3
    cloud_settings.WHATSAPP_BREAKER_COOLDOWN = 0.5
    from apps.whatsapp.models import Channel

    return Channel.objects.create(
        workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="2001", access_token="tok"
    )


def send(channel, uid="m1"):
    request = OutboundRequest(message_uid=uid, to="5215550100", type="text", content={"body": "Hola"})
    return CloudTransport().send(channel, request)


def posts(graph_standin) -> int:
    return len([r for r in graph_standin.requests if r["method"] == "POST"])


def test_server_errors_in_a_row_open_the_breaker_and_later_calls_are_not_made(channel, graph_standin):
    graph_standin.fail_next(None, http_status=503, count=3)
    reasons = []
    for n in range(3):
        with pytest.raises(SendError) as failed:
            send(channel, uid=f"m{n}")
        reasons.append(failed.value.reason)

    with pytest.raises(SendError) as paused:
        send(channel, uid="m3")

    assert reasons == ["server_error"] * 3
    assert (paused.value.reason, paused.value.permanent) == (REASON_CIRCUIT_OPEN, False)
    assert paused.value.retry_after == 1  # the cool-down, rounded up to whole seconds
    assert posts(graph_standin) == 3  # the fourth call never left
    assert graph_breaker(channel).state() == "open"


def test_after_the_cool_down_one_trial_call_closes_it_again(channel, graph_standin, shared_clock):
    graph_standin.fail_next(None, http_status=500, count=3)
    for n in range(3):
        with pytest.raises(SendError):
            send(channel, uid=f"m{n}")

    shared_clock.advance(1)  # the cool-down is 0.5 s
    result = send(channel, uid="trial")

    assert result.wamids and graph_breaker(channel).state() == "closed"
    assert [r["content"]["body"] for r in graph_standin.sent] == ["Hola"]


def test_refusals_that_prove_the_api_is_up_never_open_it(channel, graph_standin):
    """130429 and per-message errors are answers from a working API: pacing handles those."""
    graph_standin.fail_next(None, http_status=500, count=2)
    graph_standin.fail_next(130429, http_status=400, count=1)
    graph_standin.fail_next(None, http_status=500, count=2)
    graph_standin.fail_next(131026, http_status=400, count=1)
    for n in range(6):
        with pytest.raises(SendError):
            send(channel, uid=f"m{n}")

    assert graph_breaker(channel).state() == "closed"
    assert send(channel, uid="last").wamids


def test_timeouts_count_as_an_outage(channel, graph_standin, cloud_settings):
    cloud_settings.WHATSAPP_SEND_TIMEOUT = 0.2
    graph_standin.delay_next(1.0, count=3)
    for n in range(3):
        with pytest.raises(SendError) as failed:
            send(channel, uid=f"m{n}")
        assert failed.value.reason == "timeout"

    assert graph_breaker(channel).state() == "open"


def test_a_queued_message_waits_out_the_outage_without_spending_its_attempts(
    channel, graph_standin, tasks_captured, shared_clock
):
    contact = Contact.objects.create(workspace=channel.workspace, wa_id="5215550100")
    conversation = Conversation.objects.create(
        workspace=channel.workspace,
        channel=channel,
        contact=contact,
        last_inbound_at=timezone.now(),
    )
    [message] = outbound.message_enqueue(conversation=conversation, author=Message.Author.BOT, body="Hola")
    breaker = graph_breaker(channel)
    for _ in range(3):
        breaker.failure()

    outcome = outbound.message_send(message_id=message.pk)

    message.refresh_from_db()
    assert (outcome.result, outcome.countdown) == ("retry", 1.0)
    assert (message.send_state, message.attempts, message.failure_reason_shown) == (
        "retry",
        0,
        REASON_CIRCUIT_OPEN,
    )
    assert posts(graph_standin) == 0

    shared_clock.advance(1)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)
    assert outbound.message_send(message_id=message.pk).result == "sent"
    message.refresh_from_db()
    assert (message.send_state, message.attempts) == ("sent", 1)


def test_the_breaker_state_is_in_metrics(channel, graph_standin, metrics_client):
    breaker = graph_breaker(channel)
    for _ in range(3):
        breaker.failure()

    metrics = metrics_client.get("/metrics").content.decode()

    assert f'chatbot_circuit_state{{name="{breaker.name}"}} 2.0' in metrics


def test_a_send_goes_through_while_the_breakers_state_is_unreachable(channel, graph_standin, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from chatbot import circuit

    class Down:
        def apply(self, *args):
            raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(circuit, "_store", lambda: Down())

    assert send(channel).wamids
    assert [r["content"]["body"] for r in graph_standin.sent] == ["Hola"]


def test_the_breaker_state_is_in_the_channels_status(channel, graph_standin):
    from rest_framework.test import APIClient

    from apps.accounts import services as account_services
    from apps.accounts.models import Role
    from apps.accounts.tests.factories import PASSWORD, MembershipFactory

    member = MembershipFactory.create(workspace=channel.workspace, role=Role.VIEWER)
    pair = account_services.login(identifier=member.user.username, password=PASSWORD, ip=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")

    def state() -> str:
        [row] = client.get("/api/whatsapp/status").json()["channels"]
        return row["graph_circuit"]

    before = state()
    for _ in range(3):
        graph_breaker(channel).failure()

    assert (before, state()) == ("closed", "open")
