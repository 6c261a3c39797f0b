"""The alert rules pages: supervisors read, admins write, through the same services as the API."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.alerts.models import AlertRule
from apps.alerts.tests.factories import AlertRuleFactory
from apps.audit.models import AuditEntry
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _form(**fields: object) -> dict[str, object]:
    return {
        "name": "Angry customers",
        "kind": "sentiment",
        "severity": "high",
        "is_active": "on",
        "keywords": "",
        "exclusions": "",
        "pattern": "",
        "threshold": "-0.4",
        "classifier": "lexicon",
        "minutes": "0",
        "rate": "0",
        "min_count": "0",
        "cooldown_minutes": "30",
        "notify_emails": "",
        "webhook_url": "",
        "webhook_secret": "",
        **fields,
    }


def test_an_admin_creates_a_sentiment_rule_scoped_to_a_channel_from_the_page(page_client, workspace):
    client, membership = page_client(Role.ADMIN)
    channel = ChannelFactory.create(workspace=workspace, name="Tienda")
    ChannelFactory.create(name="Someone else's")

    form = client.get("/alerts/rules/new/").content.decode()
    response = client.post(
        "/alerts/rules/new/", _form(channels=[str(channel.pk)], statuses=["open", "pending_human"])
    )

    assert "Tienda" in form and "Someone else" not in form
    assert response.status_code == 302 and response["Location"] == "/alerts/rules/"
    rule = AlertRule.objects.get()
    assert (rule.workspace_id, rule.kind, rule.threshold, rule.severity) == (
        workspace.pk,
        "sentiment",
        -0.4,
        "high",
    )
    assert (rule.channels, rule.statuses) == ([channel.pk], ["open", "pending_human"])
    assert AuditEntry.objects.get(action="alert_rule.create").actor_id == membership.user_id
    listed = client.get("/alerts/rules/").content.decode()
    assert 'data-testid="rule-row"' in listed and "Angry customers" in listed


def test_a_threshold_out_of_range_is_shown_on_the_form_and_nothing_is_saved(page_client):
    client, _ = page_client(Role.ADMIN)

    response = client.post("/alerts/rules/new/", _form(threshold="0.2"))

    assert response.status_code == 200
    assert "threshold above -1 and below 0" in response.content.decode()
    assert AlertRule.objects.count() == 0


def test_editing_keeps_the_webhook_secret_when_left_empty_and_turns_keywords_into_a_list(
    page_client, workspace
):
    client, _ = page_client(Role.ADMIN)
    rule = AlertRuleFactory.create(
        workspace=workspace, webhook_url="https://hooks.example.com/a", webhook_secret="keep-me"
    )

    page = client.get(f"/alerts/rules/{rule.pk}/").content.decode()
    client.post(
        f"/alerts/rules/{rule.pk}/",
        _form(
            kind="keyword",
            keywords="reembolso, devolver el dinero",
            webhook_url="https://hooks.example.com/a",
        ),
    )

    rule.refresh_from_db()
    assert "keep-me" not in page and 'value="reembolso"' in page
    assert (rule.kind, rule.keywords, rule.webhook_secret) == (
        "keyword",
        ["reembolso", "devolver el dinero"],
        "keep-me",
    )


def test_a_supervisor_reads_the_rules_but_cannot_change_them_and_an_agent_cannot_open_them(
    page_client, workspace
):
    rule = AlertRuleFactory.create(workspace=workspace)
    supervisor, _ = page_client(Role.SUPERVISOR)
    agent, _ = page_client(Role.AGENT)

    assert supervisor.get("/alerts/rules/").status_code == 200
    assert 'data-testid="rule-form"' not in supervisor.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert supervisor.post(f"/alerts/rules/{rule.pk}/", _form()).status_code == 403
    assert supervisor.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 403
    assert supervisor.get("/alerts/rules/new/").status_code == 403
    assert agent.get("/alerts/rules/").status_code == 403
    rule.refresh_from_db()
    assert rule.kind == "keyword"


def test_another_workspace_s_rule_is_not_found_and_stays(page_client):
    client, _ = page_client(Role.ADMIN)
    theirs = AlertRuleFactory.create()

    assert client.get(f"/alerts/rules/{theirs.pk}/").status_code == 404
    assert client.post(f"/alerts/rules/{theirs.pk}/delete/").status_code == 404
    assert theirs.name not in client.get("/alerts/rules/").content.decode()
    assert AlertRule.objects.filter(pk=theirs.pk).exists()


def test_an_admin_deletes_a_rule(page_client, workspace):
    client, _ = page_client(Role.ADMIN)
    rule = AlertRuleFactory.create(workspace=workspace)

    response = client.post(f"/alerts/rules/{rule.pk}/delete/")

    assert response.status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_the_rules_page_speaks_spanish(page_client, workspace):
    client, _ = page_client(Role.ADMIN)
    AlertRuleFactory.create(workspace=workspace, kind="sentiment", keywords=[])
    client.cookies["django_language"] = "es"

    page = client.get("/alerts/rules/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    form = client.get("/alerts/rules/new/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "<h1>Reglas de alerta</h1>" in page and "Sentimiento negativo" in page
    assert "Umbral de sentimiento" in form and "Léxico sin conexión" in form
