"""End to end with real processes: webhook (live server) -> Redis -> Celery worker -> Graph stand-in
-> status webhooks back. Needs PostgreSQL (the worker shares the test database) and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import actions
from apps.whatsapp.models import Channel

ROOT = Path(__file__).resolve().parent.parent
APP_SECRET = "pipeline-app-secret"


def wait_for(check: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {check.__doc__ or check}")


@pytest.fixture
def worker(
    postgres, redis_url, graph_standin, tmp_path, worker_extra_env, worker_queues
) -> Iterator[subprocess.Popen[bytes]]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "WHATSAPP_GRAPH_URL": graph_standin.url,
        "FERNET_KEYS": ",".join(django_settings.FERNET_KEYS),
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(tmp_path),
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",  # the LLM stand-in the workspace points at
        **worker_extra_env,
    }
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "-Q",
            worker_queues,
            "-P",
            "threads",
            "-c",
            "4",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # The first task must not race the worker's start-up (it imports litellm before it is ready).
    wait_for(lambda: "ready." in (tmp_path / "worker.log").read_text(), timeout=120)
    yield proc
    proc.kill()  # the test has asserted: a warm shutdown would only wait out the worker's tasks
    proc.wait(timeout=10)
    print((tmp_path / "worker.log").read_text()[-6000:])  # shown by pytest when the test failed


def make_channel(phone_number_id: str) -> Channel:
    return Channel.objects.create(
        workspace=WorkspaceFactory.create(),
        kind="cloud",
        phone_number_id=phone_number_id,
        access_token="pipeline-token",
        app_secret=APP_SECRET,
    )


def bodies(graph_standin) -> list[str]:
    return [r["content"].get("body", "") for r in graph_standin.sent]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_customer_message_is_answered_by_the_llm_then_an_agent_then_stop_opts_out(
    worker, graph_standin, llm_standin, standin_providers, live_server, cloud_settings
):
    channel = make_channel("2002")
    standin_providers(channel.workspace_id, ["openai_compatible"], debounce_seconds=0.3)
    llm_standin.answer = "¡Hola! Soy el asistente virtual de la tienda."
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)

    # A customer writes through "Meta": the stand-in signs the webhook and posts it to our server.
    graph_standin.inject_inbound("2002", "5215550100", "Hola, quiero información", name="Lucía")

    def bot_answered() -> bool:
        """the bot's reply reached the Graph API"""
        return bodies(graph_standin) == ["¡Hola! Soy el asistente virtual de la tienda."]

    wait_for(bot_answered)
    conversation = Conversation.objects.get(channel=channel)
    assert Contact.objects.get(wa_id="5215550100").profile_name == "Lucía"
    [request] = llm_standin.chat_requests()
    assert request.messages[-1] == {"role": "user", "content": "Hola, quiero información"}

    # An agent replies; the worker sends it; the stand-in's status webhooks move it to read.
    [reply] = actions.conversation_reply(
        conversation=conversation, user=UserFactory.create(), body="Soy Marta"
    )

    def read() -> bool:
        """the agent's reply was sent and its status reached read"""
        reply.refresh_from_db()
        return reply.status == Message.Status.READ

    wait_for(read)
    assert bodies(graph_standin)[1] == "Soy Marta"
    assert reply.wamid == graph_standin.sent[1]["wamid"]

    # STOP opts the customer out and the confirmation goes out once; the bot stays silent (human).
    graph_standin.inject_inbound("2002", "5215550100", "STOP", name="Lucía")

    def confirmed() -> bool:
        """the opt-out confirmation was sent"""
        return len(graph_standin.sent) == 3

    wait_for(confirmed)
    assert Contact.objects.get(wa_id="5215550100").opted_out is True
    assert "promotional" in bodies(graph_standin)[2]
    assert len(llm_standin.chat_requests()) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_next_provider_then_the_offline_responder_answer_when_providers_fail(
    worker, graph_standin, llm_standin, standin_providers, live_server, cloud_settings
):
    channel = make_channel("2003")
    standin_providers(
        channel.workspace_id, ["openai", "lmstudio"], debounce_seconds=0.2, provider_timeout_seconds=2
    )
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    llm_standin.answer = "Te responde el segundo proveedor."
    llm_standin.fail_next(1, status=500, model="openai-model")

    graph_standin.inject_inbound("2003", "5215550300", "¿Hacen envíos?", name="Ana")

    def second_answered() -> bool:
        """the second provider's answer was sent"""
        return bodies(graph_standin) == ["Te responde el segundo proveedor."]

    wait_for(second_answered)
    assert [r.model for r in llm_standin.chat_requests()] == ["openai-model", "lmstudio-model"]

    # Every provider down: the offline responder answers and a person is asked for.
    llm_standin.fail_next(10, status=503)
    graph_standin.inject_inbound(
        "2003", "5215550300", "Necesito cambiar la dirección del pedido 881", name="Ana"
    )

    def offline_answered() -> bool:
        """the offline responder's hand-off message was sent"""
        return len(graph_standin.sent) == 2

    wait_for(offline_answered)
    assert Conversation.objects.get(channel=channel).status == Conversation.Status.PENDING_HUMAN
