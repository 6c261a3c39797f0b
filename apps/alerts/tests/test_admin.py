from __future__ import annotations

import pytest

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.alerts.models import AlertRule
from apps.alerts.tests.factories import AlertFactory
from apps.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _form(workspace_id: int, **fields: str) -> dict[str, str]:
    return {
        "workspace": str(workspace_id),
        "name": "Refunds",
        "kind": "keyword",
        "severity": "high",
        "is_active": "on",
        "keywords": '["reembolso"]',
        "exclusions": "[]",
        "pattern": "",
        "minutes": "0",
        "rate": "0",
        "min_count": "0",
        "threshold": "-0.3",
        "classifier": "lexicon",
        "channels": "[]",
        "statuses": "[]",
        "cooldown_minutes": "30",
        "notify_emails": "[]",
        "webhook_url": "",
        "webhook_secret": "",
        **fields,
    }


def test_admin_pages_open(staff):
    alert = AlertFactory.create()

    for page in (
        "/admin/alerts/alertrule/",
        f"/admin/alerts/alertrule/{alert.rule_id}/change/",
        "/admin/alerts/alert/",
        f"/admin/alerts/alert/{alert.pk}/change/",
    ):
        assert staff.get(page).status_code == 200, page


def test_a_rule_added_in_the_admin_goes_through_the_services(staff):
    workspace = WorkspaceFactory.create()

    response = staff.post("/admin/alerts/alertrule/add/", _form(workspace.pk))

    assert response.status_code == 302, response.content[:2000]
    rule = AlertRule.objects.get()
    assert (rule.workspace_id, rule.keywords) == (workspace.pk, ["reembolso"])
    assert AuditEntry.objects.filter(action="alert_rule.create").count() == 1


def test_a_rule_that_cannot_work_is_a_form_error_in_the_admin(staff):
    workspace = WorkspaceFactory.create()

    response = staff.post("/admin/alerts/alertrule/add/", _form(workspace.pk, kind="regex", pattern="(open"))

    assert response.status_code == 200
    assert b"Not a valid regular expression" in response.content
    assert AlertRule.objects.count() == 0


def test_a_sentiment_rule_is_added_in_the_admin_and_a_threshold_out_of_range_is_a_form_error(staff):
    workspace = WorkspaceFactory.create()

    refused = staff.post(
        "/admin/alerts/alertrule/add/", _form(workspace.pk, kind="sentiment", keywords="[]", threshold="0.5")
    )
    added = staff.post(
        "/admin/alerts/alertrule/add/", _form(workspace.pk, kind="sentiment", keywords="[]", threshold="-0.6")
    )

    assert refused.status_code == 200 and b"threshold above -1 and below 0" in refused.content
    assert added.status_code == 302
    assert list(AlertRule.objects.values_list("kind", "threshold")) == [("sentiment", -0.6)]
