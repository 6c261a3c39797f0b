"""The sandbox: its channel's Graph URL, the demo seed, and the pages a pretend customer uses."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.assistant import services as assistant
from apps.assistant.models import BusinessProfile, KnowledgeEntry
from apps.conversations.models import Message
from apps.conversations.transport import OutboundRequest
from apps.sandbox import demo
from apps.whatsapp.cloud import CloudTransport
from apps.whatsapp.models import Channel
from standins.graph import GraphStandIn

SECRET = "sandbox-test-secret"


def make_channel(workspace: Workspace, kind: str, phone_number_id: str) -> Channel:
    return Channel.objects.create(
        workspace=workspace, kind=kind, phone_number_id=phone_number_id, access_token="t", app_secret=SECRET
    )


def text(to: str = "34600111222") -> OutboundRequest:
    return OutboundRequest(message_uid="u1", to=to, type="text", content={"body": "hola"})


# --- the transport's base URL ------------------------------------------------------------------
@pytest.mark.django_db
def test_a_sandbox_channel_sends_to_the_sandbox_stand_in_and_a_cloud_channel_to_the_graph_url(settings):
    workspace = WorkspaceFactory.create()
    with GraphStandIn() as sandbox, GraphStandIn() as meta:
        settings.WHATSAPP_SANDBOX_GRAPH_URL = sandbox.url
        settings.WHATSAPP_GRAPH_URL = meta.url

        CloudTransport().send(make_channel(workspace, "sandbox", "sandbox-1"), text())
        CloudTransport().send(make_channel(workspace, "cloud", "1001"), text())

        assert [s["phone_number_id"] for s in sandbox.sent] == ["sandbox-1"]
        assert [s["phone_number_id"] for s in meta.sent] == ["1001"]


# --- seed_demo --------------------------------------------------------------------------------
@pytest.fixture
def default_workspace(settings) -> Workspace:
    settings.SANDBOX_APP_SECRET = SECRET
    return WorkspaceFactory.create(slug="default", name="Default")


@pytest.mark.django_db
def test_seed_demo_writes_a_bilingual_bakery_and_a_sandbox_channel_once(default_workspace, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    profile = BusinessProfile.objects.get(workspace=default_workspace)
    assert profile.name == "Panadería La Espiga"
    assert profile.languages == ["es", "en"]
    assert profile.timezone == "Europe/Madrid"
    assert profile.opening_hours["sun"] == []
    assert profile.version == 2  # written once: the second run left it alone
    faqs = KnowledgeEntry.objects.filter(workspace=default_workspace)
    assert faqs.count() == len(demo.FAQS) == 12
    assert {f.language for f in faqs} == {"es", "en"}
    channel = Channel.objects.get(phone_number_id="sandbox-1")
    assert (channel.workspace, channel.kind, channel.app_secret) == (default_workspace, "sandbox", SECRET)
    assert channel.access_token
    out = capsys.readouterr().out
    assert "sandbox channel sandbox-1 created" in out
    assert "demo FAQs: 0 created" in out.split("demo profile kept")[1]


@pytest.mark.django_db
def test_seed_demo_leaves_a_business_the_user_set_up_alone(default_workspace, settings):
    assistant.profile_update(workspace_id=default_workspace.pk, name="Taller Ruiz", description="Bicis")

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115

    profile = BusinessProfile.objects.get(workspace=default_workspace)
    assert (profile.name, profile.description) == ("Taller Ruiz", "Bicis")


@pytest.mark.django_db
def test_seed_demo_makes_no_channel_without_a_sandbox_secret_and_follows_a_new_one(
    default_workspace, settings
):
    settings.SANDBOX_APP_SECRET = ""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Channel.objects.filter(kind="sandbox").exists()

    settings.SANDBOX_APP_SECRET = SECRET
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.SANDBOX_APP_SECRET = "rotated-secret"
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115

    [channel] = Channel.objects.filter(kind="sandbox")
    assert channel.app_secret == "rotated-secret"


# --- the pages --------------------------------------------------------------------------------
def logged_in(workspace: Workspace, role: str = Role.AGENT) -> Client:
    client = Client()
    client.force_login(MembershipFactory.create(workspace=workspace, role=role).user)
    return client


@pytest.mark.django_db
def test_the_sandbox_asks_for_a_login(client):
    page = client.get("/sandbox/")
    send = client.post("/sandbox/send", "{}", content_type="application/json")
    thread = client.get("/sandbox/messages.json?number=34600111222")

    assert (page.status_code, page["Location"]) == (302, "/login/?next=/sandbox/")
    assert (send.status_code, thread.status_code) == (401, 401)


@pytest.mark.django_db
def test_a_viewer_may_not_play_a_customer():
    workspace = WorkspaceFactory.create()
    make_channel(workspace, "sandbox", "sandbox-1")

    response = logged_in(workspace, Role.VIEWER).get("/sandbox/")

    assert response.status_code == 403


@pytest.mark.django_db
def test_the_page_has_the_chat_controls_and_says_when_there_is_no_sandbox_channel():
    workspace = WorkspaceFactory.create()
    client = logged_in(workspace)

    empty = client.get("/sandbox/").content.decode()
    make_channel(workspace, "sandbox", "sandbox-1")
    page = client.get("/sandbox/").content.decode()

    assert 'data-testid="sandbox-no-channel"' in empty and "sandbox-input" not in empty
    for testid in ("sandbox-name", "sandbox-number", "sandbox-start", "sandbox-input", "sandbox-send"):
        assert f'data-testid="{testid}"' in page


@pytest.mark.django_db
def test_the_page_and_its_script_speak_the_active_language():
    workspace = WorkspaceFactory.create()
    make_channel(workspace, "sandbox", "sandbox-1")
    client = logged_in(workspace)

    spanish = client.get("/sandbox/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    english = client.get("/sandbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="es">' in spanish
    assert '<label class="visually-hidden" for="sandbox-number">Teléfono del cliente</label>' in spanish
    assert 'data-bad-number="Hace falta un número de teléfono de 6 a 15 dígitos."' in spanish
    assert 'data-http-error="El servidor respondió con el error {status}."' in spanish
    assert 'data-queued="En cola"' in spanish and 'data-agent="Agente"' in spanish
    assert 'aria-label="Volver a los clientes"' in spanish
    assert 'data-bad-number="A phone number of 6 to 15 digits is needed."' in english
    assert 'aria-label="Back to customers"' in english


def test_the_script_carries_no_words_of_its_own():
    with open(finders.find("sandbox/sandbox.js"), encoding="utf-8") as script_file:
        script = script_file.read()

    for english in (
        "digits is needed",
        "not reachable",
        "Error ${",
        '"Agent"',
        '"Queued"',
        "Choose a customer",
    ):
        assert english not in script


@pytest.mark.django_db(transaction=True)
def test_a_message_enters_through_the_signed_webhook_and_the_thread_shows_it(live_server, settings):
    workspace = WorkspaceFactory.create()
    channel = make_channel(workspace, "sandbox", "sandbox-1")
    other = make_channel(WorkspaceFactory.create(), "sandbox", "sandbox-2")
    Message.objects.create(
        workspace=other.workspace,
        channel=other,
        direction="in",
        author="customer",
        body="not yours",
        wamid="w-other",
        from_wa_id="34600111222",
    )
    client = logged_in(workspace)
    with GraphStandIn() as standin:
        settings.WHATSAPP_SANDBOX_GRAPH_URL = standin.url
        standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", SECRET)

        sent = client.post(
            "/sandbox/send",
            {"number": "+34 600 111 222", "name": "Lucía", "text": "<b>¿Abrís hoy?</b>"},
            content_type="application/json",
        )
        thread = client.get("/sandbox/messages.json?number=34600111222").json()["messages"]

    assert sent.status_code == 201
    [message] = Message.objects.filter(channel=channel)
    assert (message.wamid, message.from_wa_id, message.from_name) == (
        sent.json()["wamid"],
        "34600111222",
        "Lucía",
    )
    assert [(m["direction"], m["body"]) for m in thread] == [("in", "<b>¿Abrís hoy?</b>")]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_refuses_the_message_is_reported_and_nothing_is_stored(live_server, settings):
    workspace = WorkspaceFactory.create()
    make_channel(workspace, "sandbox", "sandbox-1")
    with GraphStandIn() as standin:
        settings.WHATSAPP_SANDBOX_GRAPH_URL = standin.url
        standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", "a-different-secret")

        response = logged_in(workspace).post(
            "/sandbox/send", {"number": "34600111222", "text": "hola"}, content_type="application/json"
        )

    assert response.status_code == 503
    assert "SANDBOX_APP_SECRET" in response.json()["error"]["message"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_stand_in_and_bad_input_answer_clearly(settings):
    workspace = WorkspaceFactory.create()
    make_channel(workspace, "sandbox", "sandbox-1")
    settings.WHATSAPP_SANDBOX_GRAPH_URL = "http://127.0.0.1:9"
    client = logged_in(workspace)

    down = client.post(
        "/sandbox/send", {"number": "34600111222", "text": "hola"}, content_type="application/json"
    )
    bad_number = client.post(
        "/sandbox/send", {"number": "12ab", "text": "hola"}, content_type="application/json"
    )
    empty = client.post(
        "/sandbox/send", {"number": "34600111222", "text": "  "}, content_type="application/json"
    )
    bad_query = client.get("/sandbox/messages.json?number=x")

    assert (down.status_code, down.json()["error"]["code"]) == (503, "sandbox_standin_unavailable")
    assert "make run" in down.json()["error"]["message"]
    assert (bad_number.status_code, empty.status_code, bad_query.status_code) == (400, 400, 400)
    assert not Message.objects.exists()
