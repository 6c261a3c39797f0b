from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import MembershipFactory
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web.services import web_session_state_set

pytestmark = pytest.mark.django_db


def client_as(role: str, workspace: Workspace) -> Client:
    client = Client()
    client.force_login(MembershipFactory.create(workspace=workspace, role=role).user)
    return client


def test_an_admin_sees_the_qr_an_agent_only_the_state(web_channel: Channel) -> None:
    web_session_state_set(channel=web_channel, state="qr", qr="2@ref,key,id")

    admin = client_as(Role.ADMIN, web_channel.workspace).get("/whatsapp-web/list/").content.decode()
    agent = client_as(Role.AGENT, web_channel.workspace).get("/whatsapp-web/list/").content.decode()

    assert 'data-testid="web-session-qr"' in admin
    assert 'data-testid="web-session-qr"' not in agent
    assert 'data-state="qr"' in agent
    assert "Waiting for an administrator" in agent


def test_another_workspaces_numbers_are_not_listed(web_channel: Channel) -> None:
    other = ChannelFactory.create(kind=Channel.Kind.WEB, phone_number_id="", name="Zebediah's shop")
    web_session_state_set(channel=other, state="qr", qr="2@theirs")

    page = client_as(Role.OWNER, web_channel.workspace).get("/whatsapp-web/").content.decode()

    assert web_channel.name in page
    assert "Zebediah" not in page


def test_an_admin_adds_a_number_and_a_bad_name_is_refused(workspace: Workspace) -> None:
    client = client_as(Role.ADMIN, workspace)

    added = client.post("/whatsapp-web/add/", {"name": "Centro"})
    refused = client.post("/whatsapp-web/add/", {"name": " "}, follow=True)

    assert added.status_code == 302
    assert list(Channel.objects.filter(workspace=workspace).values_list("kind", "name")) == [
        ("web", "Centro")
    ]
    assert "Give the number a name" in refused.content.decode()


def test_an_agent_cannot_add_a_number(workspace: Workspace, settings: Any) -> None:
    response = client_as(Role.AGENT, workspace).post("/whatsapp-web/add/", {"name": "Centro"})

    assert response.status_code == 403
    assert not Channel.objects.exists()


def test_the_page_speaks_spanish(web_channel: Channel) -> None:
    web_session_state_set(channel=web_channel, state="qr", qr="2@ref,key,id")
    client = client_as(Role.OWNER, web_channel.workspace)

    page = client.get("/whatsapp-web/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "Añadir un número de WhatsApp Web" in page
    assert "Esperando a que se escanee el código QR" in page
    assert "Código QR para vincular este número" in page


def test_an_admin_asks_for_a_pairing_code_and_it_is_shown_once_the_page_answers(
    web_channel: Channel, command_redis: Any
) -> None:
    import json

    from apps.whatsapp_web import commands
    from apps.whatsapp_web.services import web_session_pairing_set

    web_session_state_set(channel=web_channel, state="qr", qr="2@ref,key,id")
    admin = client_as(Role.ADMIN, web_channel.workspace)

    asked = admin.post(f"/whatsapp-web/{web_channel.pk}/pair/", {"phone": "+34 600 123 456"}, follow=True)

    assert "Asked WhatsApp Web for a pairing code" in asked.content.decode()
    [raw] = command_redis.lrange(commands.queue_key(web_channel.pk), 0, -1)
    assert (json.loads(raw)["op"], json.loads(raw)["args"]) == ("pair", {"phone": "34600123456"})
    web_session_pairing_set(channel=web_channel, code="abcd1234")
    page = admin.get("/whatsapp-web/list/").content.decode()
    assert 'data-testid="web-session-pairing-code">ABCD-1234<' in page
    agent = client_as(Role.AGENT, web_channel.workspace).get("/whatsapp-web/list/").content.decode()
    assert "ABCD-1234" not in agent


@pytest.mark.parametrize(
    ("phone", "state", "error"),
    [
        ("12345", "qr", "with its country code"),
        ("+34 600 123 456; drop", "qr", "with its country code"),
        ("+34 600 123 456", "connected", "not waiting to be linked"),
    ],
)
def test_a_bad_number_or_a_linked_session_is_refused_and_nothing_is_asked(
    web_channel: Channel, command_redis: Any, phone: str, state: str, error: str
) -> None:
    from apps.whatsapp_web import commands

    web_session_state_set(channel=web_channel, state=state, qr="2@ref")

    page = client_as(Role.OWNER, web_channel.workspace).post(
        f"/whatsapp-web/{web_channel.pk}/pair/", {"phone": phone}, follow=True
    )

    assert error in page.content.decode()
    assert command_redis.llen(commands.queue_key(web_channel.pk)) == 0


def test_another_workspaces_number_cannot_be_paired(web_channel: Channel, command_redis: Any) -> None:
    other = ChannelFactory.create(kind=Channel.Kind.WEB, phone_number_id="")
    web_session_state_set(channel=other, state="qr", qr="2@theirs")

    response = client_as(Role.OWNER, web_channel.workspace).post(
        f"/whatsapp-web/{other.pk}/pair/", {"phone": "+34600123456"}
    )

    assert response.status_code == 404
    assert command_redis.keys("wweb:cmd:*") == []
