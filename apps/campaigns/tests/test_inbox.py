"""From the inbox: an approved template reopens a closed window; buttons and lists go inside it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns.models import Template
from apps.campaigns.tests.conftest import WABA
from apps.conversations.models import Conversation, Message
from apps.conversations.services import outbound
from apps.conversations.tests.factories import ContactFactory, ConversationFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]

COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}", "example": {"header_text": ["A-1"]}},
    {
        "type": "BODY",
        "text": "Hola {{1}}, tu pedido está listo: {{2}}.",
        "example": {"body_text": [["Ana", "x"]]},
    },
    {"type": "FOOTER", "text": "Tienda Sol"},
]
BUTTONS = {
    "type": "button",
    "body": {"text": "¿Confirmas la cita?"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "si", "title": "Sí"}}]},
}


@pytest.fixture
def closed_window(waba_channel):
    contact = ContactFactory.create(workspace=waba_channel.workspace, wa_id="34612345678")
    return ConversationFactory.create(
        channel=waba_channel, contact=contact, last_inbound_at=timezone.now() - timedelta(hours=30)
    )


def template(channel, **fields) -> Template:
    values = {
        "workspace": channel.workspace,
        "channel": channel,
        "waba_id": WABA,
        "name": "pedido_listo",
        "language": "es_MX",
        "category": "UTILITY",
        "status": "APPROVED",
        "components": COMPONENTS,
        "variable_count": 2,
        **fields,
    }
    return Template.objects.create(**values)


def test_an_agent_sends_an_approved_template_through_a_closed_window_and_meta_gets_type_template(
    member_client, closed_window, graph_standin
):
    client, agent = member_client(Role.AGENT, closed_window.workspace)
    chosen = template(closed_window.channel)
    assert (
        client.post(
            f"/api/conversations/{closed_window.pk}/reply", {"body": "hola"}, format="json"
        ).status_code
        == 409
    )

    response = client.post(
        f"/api/conversations/{closed_window.pk}/template",
        {"template": chosen.pk, "parameters": ["Ana", "mañana a las 10"], "header_parameters": ["A-77"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    [row] = Message.objects.filter(direction="out")
    assert (row.type, row.author, row.author_user_id) == ("template", "agent", agent.user_id)
    assert row.body == "Pedido A-77\n\nHola Ana, tu pedido está listo: mañana a las 10.\n\nTienda Sol"
    assert row.payload == {
        "name": "pedido_listo",
        "language": {"code": "es_MX"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "A-77"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "mañana a las 10"}],
            },
        ],
    }
    assert Conversation.objects.get(pk=closed_window.pk).assignee_id == agent.user_id

    assert outbound.message_send(message_id=row.pk, sleep=lambda seconds: None).result == "sent"
    [sent] = graph_standin.sent
    assert (sent["type"], sent["to"], sent["content"]) == ("template", "34612345678", row.payload)


def test_a_link_button_with_a_variable_takes_the_end_of_its_link(member_client, closed_window):
    client, _ = member_client(Role.AGENT, closed_window.workspace)
    buttons = {
        "type": "BUTTONS",
        "buttons": [{"type": "URL", "text": "Seguir", "url": "https://x.mx/p/{{1}}"}],
    }
    chosen = template(closed_window.channel, components=[*COMPONENTS, buttons])
    url = f"/api/conversations/{closed_window.pk}/template"
    body = {"template": chosen.pk, "parameters": ["Ana", "hoy"], "header_parameters": ["A-1"]}

    missing = client.post(url, body, format="json")
    spaced = client.post(url, {**body, "button_parameters": ["A 1"]}, format="json")
    sent = client.post(url, {**body, "button_parameters": ["A-77"]}, format="json")

    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "template_parameters")
    assert (spaced.status_code, spaced.json()["error"]["code"]) == (400, "template_parameters")
    assert sent.status_code == 201, sent.content
    [row] = Message.objects.filter(direction="out")
    assert row.payload["components"][-1] == {
        "type": "button",
        "sub_type": "url",
        "index": "0",
        "parameters": [{"type": "text", "text": "A-77"}],
    }


@pytest.mark.parametrize(
    ("fields", "parameters", "status", "code"),
    [
        ({"status": "PENDING"}, ["Ana", "x"], 409, "template_not_approved"),
        ({"status": "PAUSED"}, ["Ana", "x"], 409, "template_not_approved"),
        ({}, ["Ana"], 400, "template_parameters"),
        ({}, ["Ana", "   "], 400, "template_parameters"),
        ({}, ["Ana", "dos\nlíneas"], 400, "template_parameters"),
        ({"waba_id": "otra"}, ["Ana", "x"], 409, "template_other_account"),
    ],
)
def test_a_template_that_cannot_go_is_refused_and_nothing_is_queued(
    member_client, closed_window, fields, parameters, status, code
):
    client, _ = member_client(Role.AGENT, closed_window.workspace)
    chosen = template(closed_window.channel, **fields)

    response = client.post(
        f"/api/conversations/{closed_window.pk}/template",
        {"template": chosen.pk, "parameters": parameters, "header_parameters": ["A-1"]},
        format="json",
    )

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert not Message.objects.filter(direction="out").exists()


def test_a_marketing_template_never_goes_to_an_opted_out_customer(member_client, closed_window):
    client, _ = member_client(Role.AGENT, closed_window.workspace)
    closed_window.contact.opted_out = True
    closed_window.contact.save()
    offer = template(closed_window.channel, name="oferta", category="MARKETING")
    notice = template(closed_window.channel, name="aviso", category="UTILITY")
    url = f"/api/conversations/{closed_window.pk}/template"
    body = {"parameters": ["Ana", "x"], "header_parameters": ["A-1"]}

    refused = client.post(url, {"template": offer.pk, **body}, format="json")
    allowed = client.post(url, {"template": notice.pk, **body}, format="json")

    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "opted_out")
    assert allowed.status_code == 201
    assert list(Message.objects.filter(direction="out").values_list("payload__name", flat=True)) == ["aviso"]


def test_another_workspaces_template_or_conversation_cannot_be_used(member_client, closed_window):
    client, _ = member_client(Role.AGENT, closed_window.workspace)
    other = WorkspaceFactory.create()
    theirs = Template.objects.create(
        workspace=other, waba_id=WABA, name="x", language="es", category="UTILITY", status="APPROVED"
    )
    their_conversation = ConversationFactory.create(workspace=other)
    mine = template(closed_window.channel)

    with_theirs = client.post(
        f"/api/conversations/{closed_window.pk}/template", {"template": theirs.pk}, format="json"
    )
    on_theirs = client.post(
        f"/api/conversations/{their_conversation.pk}/template", {"template": mine.pk}, format="json"
    )

    assert with_theirs.status_code == 400
    assert on_theirs.status_code == 404
    assert not Message.objects.filter(direction="out").exists()


def test_viewers_cannot_send(member_client, closed_window):
    client, _ = member_client(Role.VIEWER, closed_window.workspace)
    chosen = template(closed_window.channel)

    response = client.post(
        f"/api/conversations/{closed_window.pk}/template", {"template": chosen.pk}, format="json"
    )

    assert response.status_code == 403


def test_buttons_go_inside_the_window_as_type_interactive(member_client, waba_channel, graph_standin):
    client, _ = member_client(Role.AGENT, waba_channel.workspace)
    conversation = ConversationFactory.create(channel=waba_channel)

    response = client.post(
        f"/api/conversations/{conversation.pk}/interactive", {"interactive": BUTTONS}, format="json"
    )

    assert response.status_code == 201, response.content
    [row] = Message.objects.filter(direction="out")
    assert (row.type, row.body, row.payload) == ("interactive", "¿Confirmas la cita?", BUTTONS)
    outbound.message_send(message_id=row.pk, sleep=lambda seconds: None)
    assert [(s["type"], s["content"]) for s in graph_standin.sent] == [("interactive", BUTTONS)]


def test_a_list_over_whatsapps_limits_or_outside_the_window_is_refused(
    member_client, closed_window, waba_channel
):
    client, _ = member_client(Role.AGENT, waba_channel.workspace)
    open_one = ConversationFactory.create(channel=waba_channel)
    rows = [{"id": f"r{n}", "title": f"Opción {n}"} for n in range(11)]
    too_many = {
        "type": "list",
        "body": {"text": "Elige"},
        "action": {"button": "Ver", "sections": [{"rows": rows}]},
    }

    over = client.post(
        f"/api/conversations/{open_one.pk}/interactive", {"interactive": too_many}, format="json"
    )
    closed = client.post(
        f"/api/conversations/{closed_window.pk}/interactive", {"interactive": BUTTONS}, format="json"
    )

    assert (over.status_code, over.json()["error"]["code"]) == (400, "invalid_interactive")
    assert "11 rows" in over.json()["error"]["message"]
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "window_closed")
    assert not Message.objects.filter(direction="out").exists()
