from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.alerts.models import Alert
from apps.alerts.tests.factories import AlertFactory

pytestmark = pytest.mark.django_db


def test_the_alerts_page_lists_this_workspace_s_alerts_with_a_badge_and_a_link_to_the_message(
    page_client, workspace, conversation
):
    client, _ = page_client(Role.VIEWER)
    mine = AlertFactory.create(rule__workspace=workspace, conversation=conversation, summary="reembolso")
    AlertFactory.create(summary="someone else's")

    page = client.get("/alerts/").content.decode()

    assert 'data-testid="alert-row"' in page and "reembolso" in page
    assert "someone else" not in page
    assert f"/conversations/{conversation.pk}/" in page
    assert 'data-testid="alerts-badge">1<' in page
    assert 'data-testid="alert-acknowledge"' not in page  # a viewer only reads
    assert mine.state == "open"


def test_an_agent_acknowledges_then_resolves_from_the_page(page_client, workspace):
    client, membership = page_client(Role.AGENT)
    alert = AlertFactory.create(rule__workspace=workspace)

    client.post(f"/alerts/{alert.pk}/acknowledge/")
    acknowledged = Alert.objects.get()
    client.post(f"/alerts/{alert.pk}/resolve/")
    resolved = Alert.objects.get()

    assert (acknowledged.state, acknowledged.acknowledged_by_id) == ("acknowledged", membership.user_id)
    assert (resolved.state, resolved.resolved_by_id) == ("resolved", membership.user_id)
    assert 'data-testid="alerts-badge"' not in client.get("/alerts/").content.decode()


def test_the_alerts_page_speaks_spanish(page_client, workspace):
    client, _ = page_client(Role.AGENT)
    AlertFactory.create(rule__workspace=workspace, severity="high")
    client.cookies["django_language"] = "es"

    page = client.get("/alerts/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "<h1>Alertas</h1>" in page
    assert ">Alta</span>" in page and "Marcar como vista" in page and "Resolver" in page


def test_an_agent_assigns_an_alert_to_a_teammate_and_never_to_an_outsider(page_client, workspace):
    from apps.accounts.tests.factories import MembershipFactory, UserFactory

    client, _ = page_client(Role.AGENT)
    teammate = MembershipFactory.create(workspace=workspace, role=Role.AGENT)
    outsider = UserFactory.create()
    alert = AlertFactory.create(rule__workspace=workspace)

    page = client.get("/alerts/").content.decode()
    client.post(f"/alerts/{alert.pk}/assign/", {"assignee": teammate.user_id})
    assigned = client.get("/alerts/list/").content.decode()
    refused = client.post(f"/alerts/{alert.pk}/assign/", {"assignee": outsider.pk}, follow=True)

    assert f'<option value="{teammate.user_id}"' in page and f'value="{outsider.pk}"' not in page
    assert 'data-testid="alert-assigned"' in assigned and teammate.user.username in assigned
    assert "Not a member of this workspace." in refused.content.decode()
    assert Alert.objects.get().assignee_id == teammate.user_id
    client.post(f"/alerts/{alert.pk}/assign/", {"assignee": ""})
    assert Alert.objects.get().assignee_id is None
