"""Planted secrets must never reach a log line (at DEBUG) nor an API answer."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from apps.assistant.reply import generate_reply
from apps.assistant.types import ReplyRequest
from apps.conversations.models import Contact, Conversation, Message, SendAttempt
from apps.conversations.services.outbound import message_send
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db

CHANNEL_TOKEN = "EAAG-planted-access-token-7f3a9c2e51"
APP_SECRET = "planted-app-secret-4b8d0e6a"
PROVIDER_KEY = "sk-planted-provider-key-9e1f2a3b4c"
PASSWORD = "planted-user-password-x8Q2!z"


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, tasks_captured):
    settings.DATA_DIR = tmp_path
    yield


def _planted() -> list[str]:
    return [CHANNEL_TOKEN, APP_SECRET, PROVIDER_KEY, PASSWORD, django_settings.JWT_SECRET]


def test_no_planted_secret_reaches_logs_or_answers(
    cloud_settings, graph_standin, llm_standin, standin_providers, caplog
):
    caplog.set_level(logging.DEBUG)
    workspace = WorkspaceFactory.create()
    user = UserFactory.create(username="owner1")
    user.set_password(PASSWORD)
    user.save()
    MembershipFactory.create(workspace=workspace, user=user, role=Role.OWNER)
    answers = []

    # A failed and a good login, and the API answers an owner sees.
    client = APIClient()
    answers.append(
        client.post("/api/auth/login", {"username": "owner1", "password": PASSWORD + "x"}, format="json")
    )
    login = client.post("/api/auth/login", {"username": "owner1", "password": PASSWORD}, format="json")
    answers.append(login)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    graph_standin.add_number("1001", CHANNEL_TOKEN)
    created = client.post(
        "/api/whatsapp/channels/",
        {"kind": "cloud", "phone_number_id": "1001", "access_token": CHANNEL_TOKEN, "app_secret": APP_SECRET},
        format="json",
    )
    answers.append(created)
    standin_providers(workspace.pk, ["openai_compatible"], api_keys={"openai_compatible": PROVIDER_KEY})
    answers += [
        client.get(f"/api/whatsapp/channels/{created.json()['id']}/"),
        client.get("/api/whatsapp/channels/"),
        client.get("/api/business/providers"),
        client.put(
            "/api/business/providers",
            {"providers": [{"provider": "openai_compatible", "api_key": PROVIDER_KEY}]},
            format="json",
        ),
        client.get("/api/audit/"),
    ]

    # A Graph API send that fails (an expired-token error, then a server error).
    channel = Channel.objects.get(pk=created.json()["id"])
    contact = Contact.objects.create(workspace=workspace, wa_id="34600111222")
    conversation = Conversation.objects.create(
        workspace=workspace, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    graph_standin.fail_next(190, http_status=401, message="Error validating access token")
    graph_standin.fail_next(None, http_status=500, count=1)
    for body in ("first", "second"):
        message = Message.objects.create(
            workspace=workspace,
            channel=channel,
            contact=contact,
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            author=Message.Author.BOT,
            type="text",
            body=body,
            payload={"body": body},
            status=Message.Status.QUEUED,
            send_state=Message.SendState.PENDING,
        )
        message_send(message_id=message.pk)

    # An LLM provider that refuses the key and echoes it back in its error.
    llm_standin.fail_next(
        1, status=401, body={"error": {"message": f"Incorrect API key provided: {PROVIDER_KEY}"}}
    )
    generate_reply(ReplyRequest(workspace_id=workspace.pk, question="¿Abren hoy?", history=[]))

    states = sorted(Message.objects.values_list("send_state", flat=True))
    assert states == [Message.SendState.FAILED, Message.SendState.RETRY]  # both sends really failed
    assert "rejected our credentials" in caplog.text  # and the LLM failure was logged
    assert [a.status_code for a in answers] == [401, 200, 201, 200, 200, 200, 200, 200]
    assert graph_standin.sent == [] or all(CHANNEL_TOKEN not in str(s) for s in graph_standin.sent)
    stored_errors = " ".join(str(v) for v in Message.objects.values_list("last_error", "error_title"))
    stored_errors += " ".join(SendAttempt.objects.values_list("detail", flat=True))  # each send's error
    assert SendAttempt.objects.exclude(detail="").count() == 2
    for secret in _planted():
        assert secret not in caplog.text, secret
        for answer in answers:
            assert secret not in answer.content.decode(), (secret, answer.request["PATH_INFO"])
        assert secret not in stored_errors
