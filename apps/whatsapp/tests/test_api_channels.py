from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Message
from apps.conversations.tests.factories import (
    ChannelFactory,
    ConversationFactory,
    MessageFactory,
    outbound_message,
)
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db

PLANTED = {
    "app_secret": "planted-app-secret-4f1c",
    "access_token": "planted-access-token-9a2e",
    "verify_token": "planted-verify-token-77b0",
}
NEW_CHANNEL = {
    "kind": "cloud",
    "name": "Ventas",
    "phone_number_id": "106540352242922",
    "display_phone_number": "+34 600 000 001",
    "waba_id": "102290129340398",
    **PLANTED,
}


@pytest.fixture(autouse=True)
def graph(cloud_settings, graph_standin):
    """The Graph API stand-in, where NEW_CHANNEL's token reads its number."""
    graph_standin.add_number(NEW_CHANNEL["phone_number_id"], PLANTED["access_token"])
    return graph_standin


def _no_secret_in(response) -> bool:
    text = response.content.decode()
    return not any(secret in text for secret in PLANTED.values())


# --- channels: roles and secrets -------------------------------------------------------------
@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admins_and_owners_create_a_channel_whose_secrets_are_never_returned(member_client, role):
    client, admin = member_client(role)

    created = client.post("/api/whatsapp/channels/", NEW_CHANNEL, format="json")
    channel_id = created.json()["id"]
    listed = client.get("/api/whatsapp/channels/")
    fetched = client.get(f"/api/whatsapp/channels/{channel_id}/")

    assert created.status_code == 201
    assert created.json() == {
        "id": channel_id,
        "kind": "cloud",
        "name": "Ventas",
        "phone_number_id": "106540352242922",
        "display_phone_number": "+34 600 000 001",
        "waba_id": "102290129340398",
        "send_rate": 80,
        "messaging_limit": None,
        "quality_event": "",
        "quality_changed_at": None,
        "is_active": True,
        "health": "unknown",
        "health_detail": "",
        "last_webhook_at": None,
        "has_app_secret": True,
        "has_access_token": True,
        "has_verify_token": True,
        "created_at": created.json()["created_at"],
    }
    assert [row["id"] for row in listed.json()["results"]] == [channel_id]
    assert fetched.json() == created.json()
    assert all(_no_secret_in(r) for r in (created, listed, fetched))
    stored = Channel.objects.get(pk=channel_id)
    assert (stored.workspace_id, stored.app_secret, stored.access_token) == (
        admin.workspace_id,
        PLANTED["app_secret"],
        PLANTED["access_token"],
    )


def test_secrets_are_stored_encrypted(member_client):
    from django.db import connection

    client, _ = member_client(Role.ADMIN)
    channel_id = client.post("/api/whatsapp/channels/", NEW_CHANNEL, format="json").json()["id"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM whatsapp_channel WHERE id = %s", [channel_id])
        [raw] = cursor.fetchone()

    assert raw
    assert PLANTED["access_token"] not in raw


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR])
def test_below_admin_can_neither_read_nor_manage_channels(member_client, role):
    client, member = member_client(role)
    channel = ChannelFactory(workspace=member.workspace, name="Ventas", **PLANTED)

    responses = [
        client.get("/api/whatsapp/channels/"),
        client.get(f"/api/whatsapp/channels/{channel.pk}/"),
        client.post("/api/whatsapp/channels/", NEW_CHANNEL, format="json"),
        client.patch(f"/api/whatsapp/channels/{channel.pk}/", {"name": "Hijacked"}, format="json"),
        client.delete(f"/api/whatsapp/channels/{channel.pk}/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403, 403]
    assert responses[0].json()["error"]["code"] == "permission_denied"
    assert all(_no_secret_in(r) for r in responses)
    channel.refresh_from_db()
    assert channel.name == "Ventas"
    assert Channel.objects.count() == 1


def test_another_workspaces_channel_answers_404_and_stays_as_it_was(member_client):
    client, _ = member_client(Role.OWNER)
    foreign = ChannelFactory(workspace=WorkspaceFactory(), name="Theirs", **PLANTED)

    responses = [
        client.get(f"/api/whatsapp/channels/{foreign.pk}/"),
        client.patch(f"/api/whatsapp/channels/{foreign.pk}/", {"name": "Mine now"}, format="json"),
        client.delete(f"/api/whatsapp/channels/{foreign.pk}/"),
    ]
    listed = client.get("/api/whatsapp/channels/")

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert listed.json()["count"] == 0
    assert all(_no_secret_in(r) for r in responses)
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"


def test_a_phone_number_id_in_use_anywhere_is_a_conflict(member_client):
    client, _ = member_client(Role.ADMIN)
    ChannelFactory(workspace=WorkspaceFactory(), phone_number_id="106540352242922")

    response = client.post("/api/whatsapp/channels/", NEW_CHANNEL, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_phone_number_id"
    assert Channel.objects.filter(phone_number_id="106540352242922").count() == 1


def test_patch_changes_given_fields_keeps_absent_secrets_and_null_clears_one(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(workspace=admin.workspace, health=Channel.Health.OK, send_rate=80, **PLANTED)

    response = client.patch(
        f"/api/whatsapp/channels/{channel.pk}/", {"send_rate": 250, "access_token": None}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (
        body["send_rate"],
        body["has_app_secret"],
        body["has_access_token"],
        body["has_verify_token"],
    ) == (
        250,
        True,
        False,
        True,
    )
    # New credentials: the old health verdict no longer applies.
    assert body["health"] == "unknown"
    channel.refresh_from_db()
    assert (channel.send_rate, channel.app_secret, channel.access_token) == (250, PLANTED["app_secret"], "")


def test_the_messaging_limit_is_set_cleared_and_never_below_one(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(workspace=admin.workspace)
    url = f"/api/whatsapp/channels/{channel.pk}/"

    tiered = client.patch(url, {"messaging_limit": 2000}, format="json")
    zero = client.patch(url, {"messaging_limit": 0}, format="json")
    channel.refresh_from_db()
    assert (tiered.json()["messaging_limit"], zero.status_code, channel.messaging_limit) == (2000, 400, 2000)
    assert client.patch(url, {"messaging_limit": None}, format="json").json()["messaging_limit"] is None


def test_a_patch_of_plain_fields_keeps_the_health(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(workspace=admin.workspace, health=Channel.Health.OK)

    response = client.patch(f"/api/whatsapp/channels/{channel.pk}/", {"name": "Soporte"}, format="json")

    assert (response.json()["name"], response.json()["health"]) == ("Soporte", "ok")


def test_an_empty_secret_is_refused_rather_than_silently_clearing(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(workspace=admin.workspace, **PLANTED)

    response = client.patch(f"/api/whatsapp/channels/{channel.pk}/", {"app_secret": ""}, format="json")

    assert response.status_code == 400
    channel.refresh_from_db()
    assert channel.app_secret == PLANTED["app_secret"]


@pytest.mark.parametrize("rate", [0, 1001])
def test_send_rate_outside_1_to_1000_is_refused(member_client, rate):
    client, _ = member_client(Role.ADMIN)

    response = client.post("/api/whatsapp/channels/", {**NEW_CHANNEL, "send_rate": rate}, format="json")

    assert response.status_code == 400
    assert "send_rate" in response.json()["error"]["details"]
    assert not Channel.objects.exists()


def test_a_cloud_channel_needs_a_phone_number_id_but_a_web_one_does_not(member_client):
    client, _ = member_client(Role.ADMIN)

    cloud = client.post("/api/whatsapp/channels/", {"kind": "cloud", "name": "No id"}, format="json")
    web = client.post("/api/whatsapp/channels/", {"kind": "web", "name": "Phone"}, format="json")

    assert cloud.status_code == 400
    assert web.status_code == 201
    assert (web.json()["send_rate"], web.json()["has_access_token"]) == (80, False)
    assert list(Channel.objects.values_list("kind", flat=True)) == ["web"]


def test_admin_deletes_a_channel(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(workspace=admin.workspace)
    kept = ChannelFactory(workspace=admin.workspace)

    response = client.delete(f"/api/whatsapp/channels/{channel.pk}/")

    assert response.status_code == 204
    assert list(Channel.objects.values_list("pk", flat=True)) == [kept.pk]


# --- status ----------------------------------------------------------------------------------
FIGURES = (
    "id",
    "queue_depth",
    "sent_24h",
    "failed_24h",
    "error_rate",
    "inbound_backlog",
    "inbound_set_aside_24h",
)


def _aged(message: Message, hours: float) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(hours=hours))
    return message


def test_status_counts_the_queue_and_the_last_24_hours_exactly(member_client):
    client, viewer = member_client(Role.VIEWER)
    busy = ChannelFactory(workspace=viewer.workspace, name="Ventas", health=Channel.Health.OK, **PLANTED)
    idle = ChannelFactory(workspace=viewer.workspace, name="Soporte")
    ChannelFactory(workspace=WorkspaceFactory(), name="Theirs")
    conversation = ConversationFactory(channel=busy)
    S = Message.SendState
    for state in (S.PENDING, S.RETRY, S.PROCESSING):
        outbound_message(conversation=conversation, send_state=state)
    for _ in range(3):
        outbound_message(conversation=conversation, send_state=S.SENT, status=Message.Status.DELIVERED)
    outbound_message(conversation=conversation, send_state=S.FAILED, status=Message.Status.FAILED)
    # Accepted by WhatsApp, then reported undeliverable: a failure too.
    outbound_message(conversation=conversation, send_state=S.SENT, status=Message.Status.FAILED)
    _aged(outbound_message(conversation=conversation, send_state=S.SENT), hours=25)
    _aged(outbound_message(conversation=conversation, send_state=S.FAILED), hours=30)
    outbound_message(conversation=conversation, send_state=S.CANCELLED)
    MessageFactory(conversation=conversation)  # a customer message not processed yet
    MessageFactory(conversation=conversation, processed_at=timezone.now())
    set_aside = {"processed_at": timezone.now(), "failure_reason": "processing_failed"}
    MessageFactory(conversation=conversation, **set_aside)
    _aged(MessageFactory(conversation=conversation, **set_aside), hours=30)

    response = client.get("/api/whatsapp/status")

    assert response.status_code == 200
    rows = response.json()["channels"]
    assert [row["name"] for row in rows] == ["Ventas", "Soporte"]
    assert {k: rows[0][k] for k in (*FIGURES, "kind", "health")} == {
        "id": busy.pk,
        "kind": "cloud",
        "health": "ok",
        "queue_depth": 3,
        "sent_24h": 3,
        "failed_24h": 2,
        "error_rate": 0.4,
        "inbound_backlog": 1,
        "inbound_set_aside_24h": 1,
    }
    assert {k: rows[1][k] for k in FIGURES} == {
        "id": idle.pk,
        "queue_depth": 0,
        "sent_24h": 0,
        "failed_24h": 0,
        "error_rate": 0.0,
        "inbound_backlog": 0,
        "inbound_set_aside_24h": 0,
    }
    assert _no_secret_in(response)


def test_status_is_readable_by_any_member_but_not_anonymously(member_client, api_client):
    client, _ = member_client(Role.VIEWER)

    assert client.get("/api/whatsapp/status").status_code == 200
    assert api_client.get("/api/whatsapp/status").status_code == 401


# --- Django admin ------------------------------------------------------------------------------
@pytest.fixture
def admin_client_logged_in(client):
    from apps.accounts.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_never_shows_a_stored_secret(admin_client_logged_in):
    channel = ChannelFactory(**PLANTED)

    page = admin_client_logged_in.get(f"/admin/whatsapp/channel/{channel.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert not any(secret in html for secret in PLANTED.values())
    assert 'name="new_access_token"' in html


def test_the_admin_sets_a_new_secret_keeps_blank_ones_and_clears_on_request(admin_client_logged_in, graph):
    channel = ChannelFactory(send_rate=80, **PLANTED)
    graph.add_number(channel.phone_number_id, "rotated-token")
    form = {
        "kind": "cloud",
        "name": channel.name,
        "phone_number_id": channel.phone_number_id,
        "display_phone_number": "",
        "waba_id": "",
        "send_rate": "120",
        "is_active": "on",
        "new_app_secret": "",
        "new_access_token": "rotated-token",
        "new_verify_token": "",
        "clear_secrets": ["verify_token"],
    }

    response = admin_client_logged_in.post(f"/admin/whatsapp/channel/{channel.pk}/change/", form)

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.send_rate, channel.app_secret, channel.access_token, channel.verify_token) == (
        120,
        PLANTED["app_secret"],
        "rotated-token",
        "",
    )


def test_the_admin_adds_a_channel_through_the_service(admin_client_logged_in, graph):
    workspace = WorkspaceFactory()
    graph.add_number("106540352242922", "t0k")
    form = {
        "workspace": workspace.pk,
        "kind": "cloud",
        "name": "Ventas",
        "phone_number_id": "106540352242922",
        "display_phone_number": "",
        "waba_id": "",
        "send_rate": "80",
        "is_active": "on",
        "new_app_secret": "s3",
        "new_access_token": "t0k",
        "new_verify_token": "",
    }

    response = admin_client_logged_in.post("/admin/whatsapp/channel/add/", form)

    assert response.status_code == 302
    channel = Channel.objects.get()
    assert (channel.workspace_id, channel.app_secret, channel.access_token, channel.verify_token) == (
        workspace.pk,
        "s3",
        "t0k",
        "",
    )


@pytest.mark.parametrize("token", ["tok\u00e9n-with-accent", "two words", "tab\there"])
def test_a_token_that_cannot_travel_in_a_header_is_refused_before_any_call(member_client, graph, token):
    """Found by the fuzzer: a non-ASCII token made the ownership check crash with a 500."""
    client, _ = member_client(Role.ADMIN)

    response = client.post("/api/whatsapp/channels/", {**NEW_CHANNEL, "access_token": token}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["access_token"]
    assert not Channel.objects.exists()


def test_the_service_refuses_such_a_token_from_any_door(member_client):
    from apps.whatsapp.services import channel_create
    from chatbot.exceptions import ValidationFailed

    _, admin = member_client(Role.ADMIN)
    with pytest.raises(ValidationFailed) as refused:
        channel_create(
            workspace=admin.workspace,
            actor_id=admin.user_id,
            kind="cloud",
            name="x",
            phone_number_id="106540352242922",
            app_secret="s",
            access_token="tok\u00e9n",
        )

    assert refused.value.details == {"access_token": ["Visible ASCII characters only, no spaces."]}
    assert not Channel.objects.exists()
