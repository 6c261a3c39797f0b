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
