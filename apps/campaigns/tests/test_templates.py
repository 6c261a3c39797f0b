"""Templates: checked, submitted to Meta, synced page by page, deleted, and moved by Meta's webhooks."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns.models import Template
from apps.campaigns.services.templates import TemplateInvalid, template_variables
from apps.campaigns.tests.conftest import APP_SECRET, WABA
from apps.whatsapp.signature import sign
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

URL = "/api/templates/"
BODY = {
    "type": "BODY",
    "text": "Hola {{1}}, tu pedido {{2}} está listo.",
    "example": {"body_text": [["Ana", "A-1001"]]},
}


def body(text: str, examples: list[str] | None = None) -> dict:
    component: dict = {"type": "BODY", "text": text}
    if examples is not None:
        component["example"] = {"body_text": [examples]}
    return component


# --- variables ----------------------------------------------------------------------------------
def test_the_body_variables_are_counted():
    assert template_variables([BODY, {"type": "FOOTER", "text": "Responde BAJA para no recibir más"}]) == 2
    assert template_variables([body("Sin variables")]) == 0


@pytest.mark.parametrize(
    ("components", "error"),
    [
        ([body("Hola {{2}}", ["x"])], "without gaps"),
        ([body("Hola {{1}} y {{3}}", ["x", "y"])], "without gaps"),
        ([body("Hola {{name}}", ["x"])], "numbered"),
        ([body("Hola {{1}}")], "example.body_text"),
        ([body("Hola {{1}} {{2}}", ["solo uno"])], "example.body_text"),
        ([body("Hola {{1}}", [" "])], "example.body_text"),
        ([{"type": "HEADER", "format": "TEXT", "text": "Hola {{1}}"}, body("x")], "header_text"),
        ([body("x"), {"type": "FOOTER", "text": "Pie {{1}}"}], "no variables"),
        ([body("x"), body("y")], "exactly one BODY"),
        ([{"type": "FOOTER", "text": "x"}], "exactly one BODY"),
        ([body("x" * 1025)], "1024"),
        ([body("x"), {"type": "CAROUSEL"}], "Unknown component"),
    ],
)
def test_bad_variables_and_shapes_are_refused_with_the_reason(components, error):
    with pytest.raises(TemplateInvalid, match=error):
        template_variables(components)


# --- create and submit --------------------------------------------------------------------------
def test_an_admin_creates_a_template_and_it_is_submitted_to_meta_for_review(
    member_client, waba_channel, graph_standin
):
    client, admin = member_client(Role.ADMIN)

    response = client.post(
        URL,
        {
            "channel": waba_channel.pk,
            "name": "pedido_listo",
            "language": "es",
            "category": "UTILITY",
            "components": [BODY],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    at_meta = graph_standin.templates(WABA)
    assert [(t["name"], t["language"], t["status"], t["components"]) for t in at_meta] == [
        ("pedido_listo", "es", "PENDING", [BODY])
    ]
    template = Template.objects.get()
    assert (template.workspace_id, template.meta_id, template.status, template.variable_count) == (
        admin.workspace_id,
        at_meta[0]["id"],
        "PENDING",
        2,
    )
    assert response.json()["status"] == "PENDING"


def test_a_template_with_bad_variables_never_reaches_meta(member_client, waba_channel, graph_standin):
    client, _ = member_client(Role.ADMIN)

    response = client.post(
        URL,
        {
            "channel": waba_channel.pk,
            "name": "pedido_listo",
            "language": "es",
            "category": "UTILITY",
            "components": [body("Hola {{1}}")],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "template_invalid"
    assert graph_standin.requests == []
    assert not Template.objects.exists()


def test_the_schema_states_the_name_and_language_rules_the_api_keeps(
    member_client, waba_channel, graph_standin
):
    client, _ = member_client(Role.ADMIN)
    fields = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"][
        "TemplateInputRequest"
    ]["properties"]

    def submit(name: str, language: str) -> dict:
        template = {"name": name, "language": language, "category": "UTILITY", "components": [BODY]}
        return client.post(URL, {"channel": waba_channel.pk, **template}, format="json").json()

    assert (fields["name"]["pattern"], fields["language"]["pattern"]) == (
        "^[a-z0-9_]{1,512}$",
        "^[a-z]{2,3}(_[A-Z]{2})?$",
    )
    assert set(submit("Pedido Listo", "es")["error"]["details"]) == {"name"}
    assert set(submit("pedido_listo", "es-MX")["error"]["details"]) == {"language"}
    assert set(submit(" pedido_listo", "es")["error"]["details"]) == {"name"}  # as sent, untrimmed
    assert graph_standin.requests == []


def test_meta_refusing_a_template_is_a_clear_400_and_nothing_is_kept(
    member_client, waba_channel, graph_standin
):
    graph_standin.add_template(WABA, "pedido_listo", "es")  # exists at Meta, unknown here
    client, _ = member_client(Role.ADMIN)

    response = client.post(
        URL,
        {
            "channel": waba_channel.pk,
            "name": "pedido_listo",
            "language": "es",
            "category": "UTILITY",
            "components": [BODY],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "template_refused"
    assert "already exists" in response.json()["error"]["message"]
    assert not Template.objects.exists()


def test_agents_read_templates_but_only_admins_create_or_delete(member_client, waba_channel, workspace):
    template = Template.objects.create(
        workspace=workspace,
        channel=waba_channel,
        waba_id=WABA,
        name="hola",
        language="es",
        category="UTILITY",
    )
    agent, _ = member_client(Role.AGENT)
    supervisor, _ = member_client(Role.SUPERVISOR)

    assert [row["id"] for row in agent.get(URL).json()["results"]] == [template.pk]
    assert supervisor.post(URL, {}, format="json").status_code == 403
    assert supervisor.delete(f"{URL}{template.pk}/").status_code == 403
    assert supervisor.post(f"{URL}sync", {"channel": waba_channel.pk}, format="json").status_code == 403
    assert Template.objects.filter(pk=template.pk).exists()


def test_another_workspaces_templates_and_channels_are_not_found(member_client, waba_channel):
    other = WorkspaceFactory.create()
    theirs_channel = ChannelFactory.create(workspace=other, waba_id="999", access_token="t")
    theirs = Template.objects.create(
        workspace=other, channel=theirs_channel, waba_id="999", name="x", language="es", category="UTILITY"
    )
    client, _ = member_client(Role.ADMIN)

    assert client.get(URL).json()["results"] == []
    assert client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert client.delete(f"{URL}{theirs.pk}/").status_code == 404
    assert client.post(f"{URL}sync", {"channel": theirs_channel.pk}, format="json").status_code == 400
    assert Template.objects.filter(pk=theirs.pk).exists()


# --- sync and delete ------------------------------------------------------------------------------
def test_sync_follows_metas_cursors_across_pages_and_marks_the_gone_as_deleted(
    member_client, waba_channel, graph_standin, workspace
):
    for number in range(230):  # three pages of 100
        graph_standin.add_template(WABA, f"plantilla_{number:03d}", "es", components=[BODY])
    graph_standin.add_template(
        WABA, "en_ingles", "en_US", category="UTILITY", status="REJECTED", quality="UNKNOWN"
    )
    Template.objects.create(
        workspace=workspace,
        channel=waba_channel,
        waba_id=WABA,
        name="borrada",
        language="es",
        category="UTILITY",
        status="APPROVED",
    )
    client, _ = member_client(Role.ADMIN)

    first = client.post(f"{URL}sync", {"channel": waba_channel.pk}, format="json")
    again = client.post(f"{URL}sync", {"channel": waba_channel.pk}, format="json")

    assert first.json() == {"created": 231, "updated": 0, "gone": 1}
    assert again.json() == {"created": 0, "updated": 0, "gone": 0}
    pages = [r for r in graph_standin.requests if r["path"].endswith("/message_templates")]
    assert len(pages) == 2 * 3
    assert Template.objects.filter(status="APPROVED", quality="GREEN", variable_count=2).count() == 230
    assert Template.objects.get(name="en_ingles").status == "REJECTED"
    assert Template.objects.get(name="borrada").status == "DELETED"


def test_an_admin_deletes_a_template_at_meta_and_here(member_client, waba_channel, graph_standin, workspace):
    at_meta = graph_standin.add_template(WABA, "vieja", "es")
    graph_standin.add_template(WABA, "otra", "es")
    template = Template.objects.create(
        workspace=workspace,
        channel=waba_channel,
        waba_id=WABA,
        meta_id=at_meta["id"],
        name="vieja",
        language="es",
        category="MARKETING",
    )
    client, _ = member_client(Role.ADMIN)

    response = client.delete(f"{URL}{template.pk}/")

    assert response.status_code == 204
    assert [t["name"] for t in graph_standin.templates(WABA)] == ["otra"]
    assert not Template.objects.exists()


# --- webhooks -------------------------------------------------------------------------------------
def _template(workspace, channel, meta_id: str) -> Template:
    return Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id=WABA,
        meta_id=meta_id,
        name="oferta",
        language="es",
        category="UTILITY",
        status="PENDING",
    )


def _deliver(field: str, value: dict, secret: str = APP_SECRET, waba: str = WABA):
    raw = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": waba, "time": 1, "changes": [{"field": field, "value": value}]}],
        }
    ).encode()
    return Client().post(
        "/webhooks/whatsapp/",
        data=raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(raw, secret),
    )


def test_status_quality_and_category_webhooks_move_the_template(waba_channel, workspace):
    template = _template(workspace, waba_channel, "880000000000009")
    ids = {
        "message_template_id": 880000000000009,
        "message_template_name": "oferta",
        "message_template_language": "es",
    }

    rejected = _deliver(
        "message_template_status_update", {**ids, "event": "REJECTED", "reason": "INCORRECT_CATEGORY"}
    )
    template.refresh_from_db()
    assert (rejected.status_code, template.status, template.rejected_reason) == (
        200,
        "REJECTED",
        "INCORRECT_CATEGORY",
    )

    _deliver("message_template_status_update", {**ids, "event": "APPROVED", "reason": "NONE"})
    _deliver(
        "message_template_quality_update",
        {**ids, "previous_quality_score": "GREEN", "new_quality_score": "RED"},
    )
    _deliver("template_category_update", {**ids, "previous_category": "UTILITY", "new_category": "MARKETING"})

    template.refresh_from_db()
    assert (template.status, template.rejected_reason, template.quality, template.category) == (
        "APPROVED",
        "",
        "RED",
        "MARKETING",
    )


def test_a_template_webhook_signed_with_another_apps_secret_changes_nothing(waba_channel, workspace):
    template = _template(workspace, waba_channel, "880000000000009")

    response = _deliver(
        "message_template_status_update",
        {"message_template_id": 880000000000009, "event": "APPROVED"},
        secret="someone-elses-secret",
    )

    template.refresh_from_db()
    assert response.status_code == 403
    assert template.status == "PENDING"


def test_a_template_webhook_for_another_workspaces_account_leaves_ours_alone(waba_channel, workspace):
    ours = _template(workspace, waba_channel, "880000000000009")
    other_channel = ChannelFactory.create(
        workspace=WorkspaceFactory.create(), waba_id="555", app_secret="other-secret"
    )
    theirs = _template(other_channel.workspace, other_channel, "880000000000009")
    Template.objects.filter(pk=theirs.pk).update(waba_id="555")

    _deliver(
        "message_template_status_update",
        {"message_template_id": 880000000000009, "event": "PAUSED"},
        "other-secret",
        "555",
    )

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.status, theirs.status) == ("PENDING", "PAUSED")


@pytest.mark.django_db(transaction=True)
def test_the_standin_reviews_a_submitted_template_and_its_signed_webhook_approves_it(
    live_server, member_client, waba_channel, graph_standin
):
    graph_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", APP_SECRET)
    client, _ = member_client(Role.ADMIN)
    created = client.post(
        URL,
        {
            "channel": waba_channel.pk,
            "name": "pedido_listo",
            "language": "es",
            "category": "UTILITY",
            "components": [BODY],
        },
        format="json",
    ).json()

    status_code, _ = graph_standin.template_event(
        WABA, created["meta_id"], "message_template_status_update", {"event": "APPROVED"}
    )
    graph_standin.template_event(
        WABA, created["meta_id"], "message_template_quality_update", {"new_quality_score": "YELLOW"}
    )

    assert status_code == 200
    assert client.get(f"{URL}{created['id']}/").json()["status"] == "APPROVED"
    assert Template.objects.get().quality == "YELLOW"


# --- the number's quality and messaging limit (phone_number_quality_update) --------------------------
QUALITY_UPDATE = {  # Meta's phone_number_quality_update value (webhook reference, 2025 fields)
    "display_phone_number": "15550783881",
    "event": "UPGRADE",
    "old_limit": "TIER_250",
    "current_limit": "TIER_2K",
    "max_daily_conversations_per_business": "TIER_2K",
}


def test_metas_quality_update_sets_the_accounts_messaging_limit_and_the_numbers_event(
    waba_channel, workspace
):
    from apps.whatsapp.models import Channel
    from apps.whatsapp.tests.factories import ChannelFactory

    Channel.objects.filter(pk=waba_channel.pk).update(
        display_phone_number="+1 555-078-3881", messaging_limit=250
    )
    sibling = ChannelFactory.create(workspace=workspace, waba_id=WABA, display_phone_number="+1 555 000 0000")
    stranger = ChannelFactory.create(waba_id=WABA, messaging_limit=250)  # another workspace, other secret

    upgraded = _deliver("phone_number_quality_update", QUALITY_UPDATE)
    _deliver(
        "phone_number_quality_update",
        {
            **QUALITY_UPDATE,
            "event": "FLAGGED",
            "max_daily_conversations_per_business": "TIER_NOT_SET",
            "current_limit": "TIER_NOT_SET",
        },
    )  # noqa: E501
    waba_channel.refresh_from_db()
    sibling.refresh_from_db()
    stranger.refresh_from_db()

    assert upgraded.status_code == 200
    assert (waba_channel.messaging_limit, waba_channel.quality_event) == (
        2000,
        "FLAGGED",
    )  # NOT_SET kept 2,000
    assert (sibling.messaging_limit, sibling.quality_event) == (
        2000,
        "",
    )  # the portfolio's limit, not its event
    assert stranger.messaging_limit == 250
    _deliver(
        "phone_number_quality_update",
        {**QUALITY_UPDATE, "max_daily_conversations_per_business": "TIER_UNLIMITED"},
    )
    waba_channel.refresh_from_db()
    assert waba_channel.messaging_limit is None


@pytest.mark.parametrize(
    ("tier", "limit"),
    [
        ("TIER_50", 50),
        ("TIER_250", 250),
        ("TIER_1K", 1000),
        ("TIER_2K", 2000),
        ("TIER_100K", 100000),
        ("TIER_UNLIMITED", None),
        ("TIER_NOT_SET", False),
        ("10000", 10000),
        (5000, 5000),
        ("", False),
        ("x", False),
    ],
)
def test_metas_limit_names_read_as_customers_per_day(tier, limit):
    from apps.whatsapp.services import messaging_limit_of

    assert messaging_limit_of(tier) == limit
