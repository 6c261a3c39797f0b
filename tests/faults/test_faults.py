"""Faults on the real pipeline: a killed worker, a lost broker, a misbehaving Graph API, a message that
always fails, a re-delivered webhook and an unreachable database. Each asserts the exact outcome:
processed once, answered once, in order, none twice. Needs PostgreSQL and Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory
from apps.conversations.models import Contact, Conversation, ConversationSettings, Message, SenderLease
from apps.conversations.services.outbound import message_enqueue, stuck_processing_settle
from apps.conversations.services.sweeper import sweep
from apps.whatsapp.models import Channel
from tests.faults.harness import (
    APP_SECRET,
    Workers,
    bot_replies,
    delivery,
    make_channel,
    settle,
    signed_headers,
    wait_for,
    worker_pool,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workers(postgres, redis_url, graph_standin, tmp_path) -> Iterator[Workers]:
    pool = worker_pool(redis_url=redis_url, graph_url=graph_standin.url, data_dir=tmp_path)
    yield pool
    pool.stop_all()


def test_a_worker_killed_in_the_middle_of_a_reply_answers_once(
    workers, graph_standin, llm_standin, standin_providers, live_server, cloud_settings
):
    channel = make_channel("3001")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0)
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    llm_standin.answer = "Respuesta tras la caída."
    llm_standin.stall(60, times=1)  # the first model call hangs: the worker dies while waiting
    # Redis hands an unacknowledged task to another worker after the visibility timeout.
    first = workers.start(CELERY_VISIBILITY_TIMEOUT="3")

    graph_standin.inject_inbound("3001", "5215551000", "¿Tienen envío gratis?")

    def generating() -> bool:
        """the reply task reached the model"""
        return len(llm_standin.chat_requests()) == 1

    wait_for(generating)
    workers.kill(first)
    assert graph_standin.sent == []
    workers.start(CELERY_VISIBILITY_TIMEOUT="3")

    def answered() -> bool:
        """the reply was sent after the restart"""
        return len(graph_standin.sent) >= 1

    wait_for(answered, timeout=90)
    settle(4)
    assert [s["content"]["body"] for s in graph_standin.sent] == ["Respuesta tras la caída."]
    [reply] = bot_replies(channel)
    assert reply.send_state == Message.SendState.SENT
    inbound = Message.objects.get(channel=channel, direction=Message.Direction.INBOUND)
    assert inbound.processed_at is not None
    assert len(llm_standin.chat_requests()) == 2  # the killed attempt and the one that answered


def test_a_message_stored_while_the_broker_is_unreachable_is_delivered_by_the_sweeper(
    workers, graph_standin, llm_standin, standin_providers, cloud_settings, tasks_captured
):
    channel = make_channel("3002")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0)
    llm_standin.answer = "Llegó por el barrido."
    tasks_captured.fail(
        "inbound.message_process", BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    )
    body = delivery("3002", "5215552000", "Hola, ¿abren el domingo?")
    response = Client(raise_request_exception=False).post(
        "/webhooks/whatsapp/", body, content_type="application/json", headers=signed_headers(body)
    )
    assert response.status_code == 200  # the rows committed; the failed enqueue is logged, not answered
    tasks_captured.release()  # the broker is back
    inbound = Message.objects.get(channel=channel, direction=Message.Direction.INBOUND)
    assert inbound.processed_at is None  # stored (the database is the truth), never enqueued

    workers.start()
    settle(2)
    assert graph_standin.sent == []  # nothing reached a worker
    # The sweeper leaves fresh rows to tasks on their way; this one is past its grace period.
    Message.objects.filter(pk=inbound.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert sweep(processing_timeout=timedelta(minutes=10))["inbound"] == 1

    def answered() -> bool:
        """the swept message was answered"""
        return len(graph_standin.sent) >= 1

    wait_for(answered)
    settle()
    assert [s["content"]["body"] for s in graph_standin.sent] == ["Llegó por el barrido."]
    assert len(bot_replies(channel)) == 1
    assert sweep(processing_timeout=timedelta(minutes=10))["inbound"] == 0


def _queue(conversations: list[Conversation], per_conversation: int, tag: str) -> dict[str, list[str]]:
    expected: dict[str, list[str]] = {}
    with transaction.atomic():
        for n in range(per_conversation):
            for conversation in conversations:
                body = f"{tag} {conversation.contact.wa_id} #{n}"
                message_enqueue(conversation=conversation, author=Message.Author.AGENT, body=body)
                expected.setdefault(conversation.contact.wa_id, []).append(body)
    return expected


def test_graph_rate_limits_server_errors_and_timeouts_lose_nothing_and_keep_each_conversation_in_order(
    workers, graph_standin, live_server, cloud_settings
):
    channel = make_channel("3003")
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    conversations = []
    for n in range(3):
        contact = Contact.objects.create(workspace=channel.workspace, wa_id=f"52155530{n:02d}")
        conversations.append(
            Conversation.objects.create(
                workspace=channel.workspace, channel=channel, contact=contact, last_inbound_at=timezone.now()
            )
        )
    # A send timing out after Meta accepted it stays `processing` until its status webhook arrives.
    workers.start(WHATSAPP_SEND_TIMEOUT="1")

    # Phase 1: rate limited (130429) and server errors (5xx) on the first sends.
    graph_standin.fail_next(130429, http_status=400, count=3)
    graph_standin.fail_next(None, http_status=500, count=2, retry_after=1)
    graph_standin.fail_next(131000, http_status=500, count=1, retry_after=1)
    expected = _queue(conversations, 3, "uno")

    def phase_one_sent() -> bool:
        """every message of the first batch reached the Graph API"""
        return len(graph_standin.sent) >= 9

    wait_for(phase_one_sent, timeout=90)
    # Phase 2: the next answers come after the client's timeout (the sends themselves were accepted).
    graph_standin.delay_next(2.5, count=2)
    for wa_id, bodies in _queue(conversations, 2, "dos").items():
        expected[wa_id] += bodies

    def all_sent() -> bool:
        """every queued message reached the Graph API and its row left the queue"""
        return (
            len(graph_standin.sent) >= 15
            and not Message.objects.filter(
                channel=channel, send_state__in=["pending", "retry", "processing"]
            ).exists()
        )

    wait_for(all_sent, timeout=120)
    settle()
    per_recipient: dict[str, list[str]] = {}
    for record in graph_standin.sent:
        per_recipient.setdefault(record["to"], []).append(record["content"]["body"])
    assert per_recipient == expected  # each conversation in queued order, none twice, none lost
    refused = [r for r in graph_standin.requests if r["method"] == "POST"]
    assert len(refused) == 15 + 6  # the six refused sends were retried; no accepted send was repeated
    assert set(Message.objects.filter(channel=channel).values_list("send_state", flat=True)) == {"sent"}


def test_a_message_that_always_fails_is_failed_for_good_after_its_attempts_and_listed(
    workers, graph_standin, cloud_settings
):
    channel = make_channel("3004")
    ConversationSettings.objects.filter(workspace_id=channel.workspace_id).update(max_send_attempts=3)
    contact = Contact.objects.create(workspace=channel.workspace, wa_id="5215554000")
    conversation = Conversation.objects.create(
        workspace=channel.workspace, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    graph_standin.fail_next(None, http_status=503, count=100, retry_after=1)
    workers.start()
    with transaction.atomic():
        [message] = message_enqueue(
            conversation=conversation, author=Message.Author.AGENT, body="Nunca llega"
        )

    def failed() -> bool:
        """the message was failed for good"""
        message.refresh_from_db()
        return message.send_state == Message.SendState.FAILED

    wait_for(failed)
    settle(3)
    message.refresh_from_db()
    assert (message.send_state, message.attempts, message.max_attempts) == ("failed", 3, 3)
    assert len([r for r in graph_standin.requests if r["method"] == "POST"]) == 3
    assert graph_standin.sent == []

    owner = MembershipFactory.create(workspace=channel.workspace, role=Role.OWNER)
    client = APIClient()
    login = client.post(
        "/api/auth/login", {"username": owner.user.username, "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200, login.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    response = client.get("/api/queue/?state=failed")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert row["id"] == message.pk
    assert client.get("/api/queue/?state=retry").json()["results"] == []


def test_the_same_webhook_delivered_five_times_at_once_is_stored_and_answered_once(
    workers, graph_standin, llm_standin, standin_providers, live_server, cloud_settings
):
    channel = make_channel("3005")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0)
    llm_standin.answer = "Una sola respuesta."
    workers.start()
    body = delivery("3005", "5215555000", "¿Cuánto cuesta el envío?")
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def post() -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            response = client.post(
                f"{live_server.url}/webhooks/whatsapp/", content=body, headers=signed_headers(body)
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 5

    def answered() -> bool:
        """the reply was sent"""
        return len(graph_standin.sent) >= 1

    wait_for(answered)
    settle(3)
    assert Message.objects.filter(channel=channel, direction=Message.Direction.INBOUND).count() == 1
    assert len(bot_replies(channel)) == 1
    assert [s["content"]["body"] for s in graph_standin.sent] == ["Una sola respuesta."]
    assert len(llm_standin.chat_requests()) == 1


def test_a_webhook_during_a_database_outage_gets_5xx_and_the_redelivery_is_processed_once(
    workers, graph_standin, llm_standin, standin_providers, cloud_settings
):
    channel = make_channel("3006")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0)
    llm_standin.answer = "Procesado una vez."
    workers.start()
    body = delivery("3006", "5215556000", "Quiero reservar")
    client = Client(raise_request_exception=False)

    def database_down(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "SAVEPOINT")):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    headers = signed_headers(body)
    with connection.execute_wrapper(database_down):
        refused = client.post("/webhooks/whatsapp/", body, content_type="application/json", headers=headers)
    assert refused.status_code >= 500
    assert not Message.objects.filter(channel=channel).exists()

    # Meta re-delivers the same signed body.
    accepted = client.post("/webhooks/whatsapp/", body, content_type="application/json", headers=headers)
    assert accepted.status_code == 200

    def answered() -> bool:
        """the re-delivered message was answered"""
        return len(graph_standin.sent) >= 1

    wait_for(answered)
    settle(3)
    assert Message.objects.filter(channel=channel, direction=Message.Direction.INBOUND).count() == 1
    assert len(bot_replies(channel)) == 1
    assert [s["content"]["body"] for s in graph_standin.sent] == ["Procesado una vez."]


def test_a_sender_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    workers, graph_standin, live_server, cloud_settings
):
    channel = make_channel("3007")
    Channel.objects.filter(pk=channel.pk).update(send_rate=20)
    # Status webhooks settle the sends that were in flight when the sender died.
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    conversations = []
    for n in range(10):
        contact = Contact.objects.create(workspace=channel.workspace, wa_id=f"52155570{n:02d}")
        conversations.append(
            Conversation.objects.create(
                workspace=channel.workspace, channel=channel, contact=contact, last_inbound_at=timezone.now()
            )
        )
    settings_env = {
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "OUTBOUND_SENDER_LEASE": "3",
        "OUTBOUND_SENDER_THREADS": "4",
    }
    first = workers.start(**settings_env)
    expected = _queue(conversations, 6, "lote")  # 60 messages, about 3 s at 20/s

    def mid_batch() -> bool:
        """the sender is part-way through the number's queue"""
        return len(graph_standin.sent) >= 15

    wait_for(mid_batch, timeout=60)
    [dead] = SenderLease.objects.filter(channel_id=channel.pk).values_list("holder", flat=True)
    workers.kill(first)
    sent_before = len(graph_standin.sent)
    assert sent_before < 60
    workers.start(**settings_env)

    def finished_or_blocked() -> bool:
        """every row left the queue, or waits behind a send whose outcome is unknown"""
        return (
            not Message.objects.filter(channel=channel, send_state__in=["pending", "retry"])
            .exclude(conversation__messages__send_state="processing")
            .exists()
        )

    sweep(processing_timeout=timedelta(minutes=10))  # the beat's next sweep wakes the number if needed
    wait_for(finished_or_blocked, timeout=90)
    settle(3)
    # A send the dead sender had claimed but never handed over stays unknown: a person decides.
    unknown = stuck_processing_settle(older_than=timedelta(0))
    sweep(processing_timeout=timedelta(minutes=10))

    def all_settled() -> bool:
        """no row is waiting any more"""
        return not Message.objects.filter(
            channel=channel, send_state__in=["pending", "retry", "processing"]
        ).exists()

    wait_for(all_settled, timeout=60)
    settle(2)
    lease = SenderLease.objects.get(channel_id=channel.pk)
    assert lease.holder != dead  # another sender took the number over
    bodies = [record["content"]["body"] for record in graph_standin.sent]
    assert len(bodies) == len(set(bodies))  # nothing twice
    unknown_rows = set(
        Message.objects.filter(channel=channel, send_attempts__reason="unknown_outcome").values_list(
            "body", flat=True
        )
    )
    assert (
        unknown_rows.isdisjoint(bodies) and len(unknown_rows) == unknown <= 4
    )  # at most the threads in flight
    assert set(bodies) | unknown_rows == {
        body for queued in expected.values() for body in queued
    }  # none lost
    per_recipient: dict[str, list[str]] = {}
    for record in graph_standin.sent:
        per_recipient.setdefault(record["to"], []).append(record["content"]["body"])
    for wa_id, queued in expected.items():
        assert per_recipient.get(wa_id, []) == [b for b in queued if b not in unknown_rows]  # in order
    sent_rows = Message.objects.filter(channel=channel, send_state="sent").count()
    assert sent_rows == len(bodies) and len(
        [r for r in graph_standin.requests if r["method"] == "POST"]
    ) == 60 - len(unknown_rows)
