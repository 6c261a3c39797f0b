"""A Cloud channel proves it owns its number (its token reads the number at the Graph API, stand-in over
real HTTP) before it is saved, and a caller who cannot prove it learns nothing about other workspaces."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Message
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SHOP = "106540352242922"  # workspace A's number, not connected to the platform yet
SHOP_TOKEN = "EAAG-shop-token-5e1d"
OTHER = "109876543210987"  # workspace B's own number
OTHER_TOKEN = "EAAG-other-token-0a2b"
URL = "/api/whatsapp/channels/"


@pytest.fixture(autouse=True)
def graph(cloud_settings, graph_standin):
    graph_standin.add_number(
        SHOP, SHOP_TOKEN, verified_name="Zapatería Ana", display_phone_number="+34 600 111 222"
    )
    graph_standin.add_number(OTHER, OTHER_TOKEN)
    return graph_standin


def _cloud(phone_number_id: str, **secrets: str) -> dict[str, str]:
    return {"kind": "cloud", "name": "Ventas", "phone_number_id": phone_number_id, **secrets}


def _error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def test_an_admin_cannot_claim_another_workspaces_unregistered_number(member_client, graph):
    client, _ = member_client(Role.ADMIN)  # workspace B

    no_secrets = client.post(URL, _cloud(SHOP), format="json")
    made_up = client.post(URL, _cloud(SHOP, app_secret="mine", access_token="EAAG-made-up"), format="json")
    own_token = client.post(URL, _cloud(SHOP, app_secret="mine", access_token=OTHER_TOKEN), format="json")

    assert _error(no_secrets) == (400, "invalid")
    assert no_secrets.json()["error"]["details"] == {
        "app_secret": ["Required for Cloud API."],
        "access_token": ["Required for Cloud API."],
    }
    assert _error(made_up) == (400, "channel_token_invalid")
    assert _error(own_token) == (400, "channel_not_owned")
    assert not Channel.objects.exists()
    # Meta's body (its message, its trace id) is never passed on.
    assert made_up.json()["error"]["message"] == "WhatsApp does not accept this access token."
    assert "OAuth" not in made_up.content.decode() and "fbtrace" not in own_token.content.decode()
    checks = [r["path"] for r in graph.requests]
    assert checks == [f"/v21.0/{SHOP}", f"/v21.0/{SHOP}"]  # no secrets: refused before calling Meta


def test_the_owner_proves_the_number_with_its_token_and_gets_meta_s_display_number(member_client, graph):
    client, admin = member_client(Role.ADMIN)

    response = client.post(
        URL, _cloud(SHOP, app_secret="shop-secret", access_token=SHOP_TOKEN), format="json"
    )

    assert response.status_code == 201
    assert response.json()["display_phone_number"] == "+34 600 111 222"
    channel = Channel.objects.get()
    assert (channel.workspace_id, channel.phone_number_id, channel.access_token, channel.app_secret) == (
        admin.workspace_id,
        SHOP,
        SHOP_TOKEN,
        "shop-secret",
    )


def test_without_the_numbers_token_a_connected_number_is_not_told_apart_from_a_free_one(member_client):
    ChannelFactory(
        workspace=WorkspaceFactory(), phone_number_id=SHOP, app_secret="a", access_token=SHOP_TOKEN
    )
    client, _ = member_client(Role.ADMIN)

    taken = client.post(URL, _cloud(SHOP, app_secret="x", access_token=OTHER_TOKEN), format="json")
    free = client.post(
        URL, _cloud("100000000000777", app_secret="x", access_token=OTHER_TOKEN), format="json"
    )
    bad_token_taken = client.post(URL, _cloud(SHOP, app_secret="x", access_token="EAAG-guess"), format="json")
    bad_token_free = client.post(
        URL, _cloud("100000000000777", app_secret="x", access_token="EAAG-guess"), format="json"
    )

    assert _error(taken) == _error(free) == (400, "channel_not_owned")
    assert taken.json() == free.json()
    assert _error(bad_token_taken) == _error(bad_token_free) == (400, "channel_token_invalid")
    assert Channel.objects.count() == 1


def test_a_proven_owner_is_told_the_number_is_connected_elsewhere(member_client):
    ChannelFactory(
        workspace=WorkspaceFactory(), phone_number_id=SHOP, app_secret="a", access_token=SHOP_TOKEN
    )
    client, _ = member_client(Role.ADMIN)

    response = client.post(URL, _cloud(SHOP, app_secret="x", access_token=SHOP_TOKEN), format="json")

    assert _error(response) == (409, "duplicate_phone_number_id")
    assert Channel.objects.get().app_secret == "a"


def test_an_attackers_refused_claim_leaves_the_number_free_for_its_owner(member_client):
    attacker, _ = member_client(Role.ADMIN)
    owner, owner_membership = member_client(Role.ADMIN, WorkspaceFactory())

    refused = attacker.post(URL, _cloud(SHOP, app_secret="x", access_token=OTHER_TOKEN), format="json")
    created = owner.post(URL, _cloud(SHOP, app_secret="shop-secret", access_token=SHOP_TOKEN), format="json")

    assert _error(refused) == (400, "channel_not_owned")
    assert created.status_code == 201
    assert Channel.objects.get().workspace_id == owner_membership.workspace_id


def test_an_unreachable_graph_api_is_503_and_nothing_is_saved(member_client, settings):
    settings.WHATSAPP_GRAPH_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    client, _ = member_client(Role.ADMIN)

    response = client.post(URL, _cloud(SHOP, app_secret="x", access_token=SHOP_TOKEN), format="json")

    assert _error(response) == (503, "graph_unavailable")
    assert not Channel.objects.exists()


def test_changing_the_number_or_the_token_proves_ownership_again(member_client):
    client, admin = member_client(Role.ADMIN)
    channel = ChannelFactory(
        workspace=admin.workspace, phone_number_id=OTHER, app_secret="b", access_token=OTHER_TOKEN
    )

    to_shop = client.patch(f"{URL}{channel.pk}/", {"phone_number_id": SHOP}, format="json")
    bad_token = client.patch(f"{URL}{channel.pk}/", {"access_token": "EAAG-guess"}, format="json")
    renamed = client.patch(f"{URL}{channel.pk}/", {"name": "Soporte"}, format="json")

    assert _error(to_shop) == (400, "channel_not_owned")
    assert _error(bad_token) == (400, "channel_token_invalid")
    assert renamed.status_code == 200
    channel.refresh_from_db()
    assert (channel.phone_number_id, channel.access_token, channel.name) == (OTHER, OTHER_TOKEN, "Soporte")


@pytest.mark.django_db(transaction=True)
def test_platform_signed_deliveries_for_a_number_with_its_own_secret_are_refused_over_http(
    live_server, settings, graph
):
    """The attack's second half, end to end: Meta's stand-in posts a customer's message for workspace A's
    number signed with the platform's app secret; A's channel has its own, so nothing is stored."""
    settings.WHATSAPP_APP_SECRET = "platform-app-secret-8c1e"
    ChannelFactory(workspace=WorkspaceFactory(), phone_number_id=SHOP, app_secret="shop-own-secret")
    graph.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", "platform-app-secret-8c1e")

    forged = graph.inject_inbound(SHOP, "34600999888", "hola")
    graph.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", "shop-own-secret")
    genuine = graph.inject_inbound(SHOP, "34600999888", "hola de verdad")

    assert (forged.status_code, genuine.status_code) == (403, 200)
    assert list(Message.objects.values_list("wamid", "body")) == [(genuine.wamid, "hola de verdad")]


@pytest.mark.parametrize("kind", ["sandbox", "web"])
def test_no_other_kind_can_squat_a_number_or_learn_that_it_is_taken(member_client, kind):
    ChannelFactory(
        workspace=WorkspaceFactory(), phone_number_id=SHOP, app_secret="a", access_token=SHOP_TOKEN
    )
    client, admin = member_client(Role.ADMIN)
    mine = ChannelFactory(workspace=admin.workspace, kind=kind, phone_number_id="")

    taken = client.post(URL, {"kind": kind, "phone_number_id": SHOP}, format="json")
    free = client.post(URL, {"kind": kind, "phone_number_id": "100000000000777"}, format="json")
    moved = client.patch(f"{URL}{mine.pk}/", {"phone_number_id": "100000000000777"}, format="json")

    assert _error(taken) == _error(free) == _error(moved) == (400, "invalid")
    assert taken.json() == free.json()
    assert set(Channel.objects.values_list("phone_number_id", flat=True)) == {SHOP, ""}


def test_the_admin_shows_a_refused_claim_on_the_form_and_saves_nothing(client):
    from apps.accounts.tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    form = {
        "workspace": WorkspaceFactory().pk,
        "kind": "cloud",
        "name": "Ventas",
        "phone_number_id": SHOP,
        "display_phone_number": "",
        "waba_id": "",
        "send_rate": "80",
        "is_active": "on",
        "new_app_secret": "s3",
        "new_access_token": OTHER_TOKEN,
        "new_verify_token": "",
    }

    response = client.post("/admin/whatsapp/channel/add/", form)

    assert response.status_code == 200
    assert "This access token does not give access to this phone_number_id." in response.content.decode()
    assert not Channel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_migration_0002_stores_the_platform_secret_on_the_bootstrap_channel_and_flags_the_others(settings):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    settings.WHATSAPP_PHONE_NUMBER_ID, settings.WHATSAPP_APP_SECRET = SHOP, "platform-app-secret-8c1e"
    before = MigrationExecutor(connection)
    before.migrate([("whatsapp", "0001_initial")])
    # The model as it was then: today's has columns later migrations add.
    old_channel = before.loader.project_state([("whatsapp", "0001_initial")]).apps.get_model(
        "whatsapp", "Channel"
    )
    workspace = WorkspaceFactory()

    def channel(**fields):
        return old_channel.objects.create(workspace_id=workspace.pk, health=Channel.Health.OK, **fields)

    bootstrap = channel(phone_number_id=SHOP, app_secret="")
    bare = channel(phone_number_id=OTHER, app_secret="")
    own = channel(phone_number_id="3003", app_secret="own-secret")
    sandbox = channel(kind="sandbox", app_secret="")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {c.pk: (c.app_secret, c.health) for c in Channel.objects.all()}
    assert rows == {
        bootstrap.pk: ("platform-app-secret-8c1e", "ok"),
        bare.pk: ("", "unhealthy"),
        own.pk: ("own-secret", "ok"),
        sandbox.pk: ("", "ok"),
    }
    assert Channel.objects.get(pk=bare.pk).health_detail.startswith(
        "No app secret: webhook deliveries are refused"
    )
