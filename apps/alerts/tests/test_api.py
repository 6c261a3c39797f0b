"""/api/alerts/: rules CRUD and the alerts inbox (list, filter, acknowledge, assign, resolve)."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from apps.alerts.models import Alert, AlertRule
from apps.alerts.tests.factories import AlertFactory, AlertRuleFactory
from apps.audit.models import AuditEntry
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
RULES = "/api/alerts/rules/"


def test_an_admin_creates_a_keyword_rule_and_the_secret_is_never_shown(member_client, workspace):
    client, membership = member_client(Role.ADMIN)

    response = client.post(
        RULES,
        {
            "name": "Refunds",
            "kind": "keyword",
            "keywords": ["reembolso", "devolver el dinero"],
            "exclusions": ["no quiero reembolso"],
            "severity": "high",
            "notify_emails": ["ops@example.com"],
            "webhook_url": "https://hooks.example.com/alerts",
            "webhook_secret": "s3cret-value",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    rule = AlertRule.objects.get(pk=body["id"])
    assert rule.workspace_id == workspace.pk and rule.webhook_secret == "s3cret-value"
    assert body["webhook_secret_set"] is True
    assert "webhook_secret" not in body and b"s3cret-value" not in response.content
    assert (body["cooldown_minutes"], body["is_active"], body["statuses"]) == (30, True, [])
    entry = AuditEntry.objects.get(action="alert_rule.create")
    assert entry.actor_id == membership.user_id and "s3cret-value" not in str(entry.details)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "keyword"}, "keywords"),
        ({"name": "x", "kind": "keyword", "keywords": ["¿?"]}, "keywords"),
        ({"name": "x", "kind": "asked_for_person", "exclusions": ["¥"]}, "exclusions"),
        ({"name": "x", "kind": "regex", "pattern": "(open"}, None),
        ({"name": "x", "kind": "regex"}, "pattern"),
        ({"name": "x", "kind": "no_answer"}, "minutes"),
        ({"name": "x", "kind": "delivery_failures", "minutes": 10}, "rate"),
        (
            {"name": "x", "kind": "asked_for_person", "webhook_url": "https://h.example.com/"},
            "webhook_secret",
        ),
        ({"name": "x", "kind": "asked_for_person", "channels": [999999]}, "channels"),
        ({"name": "x", "kind": "sentiment", "threshold": 0}, "threshold"),
        ({"name": "x", "kind": "sentiment", "threshold": -1}, "threshold"),
        ({"name": "x", "kind": "sentiment", "threshold": -1.5}, "threshold"),
        ({"name": "x", "kind": "feelings"}, "kind"),
        ({"name": "x", "kind": "sentiment", "classifier": "oracle"}, "classifier"),
    ],
)
def test_a_rule_that_cannot_work_is_refused_with_400(member_client, body, field):
    client, _ = member_client(Role.ADMIN)

    response = client.post(RULES, body, format="json")

    assert response.status_code == 400, response.content
    if field:
        assert field in str(response.json()["error"].get("details"))
    assert AlertRule.objects.count() == 0


def test_a_webhook_to_a_private_address_is_refused(member_client):
    client, _ = member_client(Role.ADMIN)

    response = client.post(
        RULES,
        {
            "name": "x",
            "kind": "asked_for_person",
            "webhook_url": "http://127.0.0.1:6379/",
            "webhook_secret": "k",
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_not_allowed"


def test_another_workspace_s_channel_cannot_scope_a_rule(member_client):
    client, _ = member_client(Role.ADMIN)
    theirs = ChannelFactory.create()

    response = client.post(
        RULES, {"name": "x", "kind": "asked_for_person", "channels": [theirs.pk]}, format="json"
    )

    assert response.status_code == 400


def test_patch_changes_only_what_is_sent_and_keeps_the_secret(member_client, workspace):
    client, _ = member_client(Role.ADMIN)
    rule = AlertRuleFactory.create(
        workspace=workspace, webhook_url="https://hooks.example.com/a", webhook_secret="keep-me"
    )

    response = client.patch(f"{RULES}{rule.pk}/", {"severity": "low", "keywords": ["queja"]}, format="json")

    assert response.status_code == 200, response.content
    rule.refresh_from_db()
    assert (rule.severity, rule.keywords, rule.name, rule.webhook_secret) == (
        "low",
        ["queja"],
        rule.name,
        "keep-me",
    )


def test_patch_that_breaks_the_rule_is_refused_and_nothing_changes(member_client, workspace):
    client, _ = member_client(Role.ADMIN)
    rule = AlertRuleFactory.create(workspace=workspace, keywords=["queja"])

    response = client.patch(f"{RULES}{rule.pk}/", {"keywords": []}, format="json")

    assert response.status_code == 400
    rule.refresh_from_db()
    assert rule.keywords == ["queja"]


def test_deleting_a_rule_keeps_its_alerts(member_client, workspace):
    client, _ = member_client(Role.ADMIN)
    alert = AlertFactory.create(rule__workspace=workspace, rule__name="Refunds")

    response = client.delete(f"{RULES}{alert.rule_id}/")

    assert response.status_code == 204
    alert.refresh_from_db()
    assert (alert.rule_id, alert.rule_name) == (None, "Refunds")


def test_rules_list_filters_by_kind_and_activity(member_client, workspace):
    client, _ = member_client(Role.SUPERVISOR)
    keyword = AlertRuleFactory.create(workspace=workspace)
    AlertRuleFactory.create(workspace=workspace, kind="regex", keywords=[], pattern="x")
    AlertRuleFactory.create(workspace=workspace, is_active=False)
    AlertRuleFactory.create()  # another workspace's

    listed = client.get(RULES, {"kind": "keyword", "is_active": "true"}).json()

    assert [r["id"] for r in listed["results"]] == [keyword.pk]
    assert client.get(RULES).json()["count"] == 3


def test_the_alerts_list_filters_and_shows_newest_first(member_client, workspace):
    client, _ = member_client(Role.VIEWER)
    low = AlertFactory.create(rule__workspace=workspace, severity="low")
    high = AlertFactory.create(rule__workspace=workspace, severity="high")
    AlertFactory.create(rule__workspace=workspace, severity="high", state="resolved")
    AlertFactory.create(severity="high")  # another workspace's

    everything = client.get("/api/alerts/").json()
    open_high = client.get("/api/alerts/", {"state": "open", "severity": "high"}).json()

    assert everything["count"] == 3
    assert [a["id"] for a in everything["results"]][1:] == [high.pk, low.pk]
    assert [a["id"] for a in open_high["results"]] == [high.pk]


def test_acknowledge_then_resolve_records_who_and_when(member_client, workspace):
    client, membership = member_client(Role.AGENT)
    alert = AlertFactory.create(rule__workspace=workspace)

    acknowledged = client.post(f"/api/alerts/{alert.pk}/acknowledge").json()
    again = client.post(f"/api/alerts/{alert.pk}/acknowledge")
    resolved = client.post(f"/api/alerts/{alert.pk}/resolve").json()

    assert acknowledged["state"] == "acknowledged"
    assert acknowledged["acknowledged_by"]["id"] == membership.user_id
    assert again.status_code == 200 and again.json()["acknowledged_at"] == acknowledged["acknowledged_at"]
    assert resolved["state"] == "resolved" and resolved["resolved_by"]["id"] == membership.user_id
    assert resolved["resolved_at"] is not None
    late = client.post(f"/api/alerts/{alert.pk}/acknowledge")
    assert late.status_code == 409
    assert Alert.objects.get().state == "resolved"


def test_resolving_an_open_alert_records_the_acknowledgement_too(member_client, workspace):
    client, membership = member_client(Role.AGENT)
    alert = AlertFactory.create(rule__workspace=workspace)

    body = client.post(f"/api/alerts/{alert.pk}/resolve").json()

    assert body["acknowledged_by"]["id"] == membership.user_id == body["resolved_by"]["id"]


def test_assign_to_a_member_and_back_to_nobody_but_never_to_an_outsider(member_client, workspace):
    client, _ = member_client(Role.AGENT)
    colleague = MembershipFactory.create(workspace=workspace, role=Role.AGENT)
    outsider = MembershipFactory.create(role=Role.OWNER)
    alert = AlertFactory.create(rule__workspace=workspace)

    assigned = client.post(f"/api/alerts/{alert.pk}/assign", {"assignee": colleague.user_id}, format="json")
    refused = client.post(f"/api/alerts/{alert.pk}/assign", {"assignee": outsider.user_id}, format="json")

    assert assigned.status_code == 200 and assigned.json()["assignee"]["id"] == colleague.user_id
    assert refused.status_code == 400
    assert Alert.objects.get().assignee_id == colleague.user_id
    cleared = client.post(f"/api/alerts/{alert.pk}/assign", {"assignee": None}, format="json")
    assert cleared.status_code == 200 and cleared.json()["assignee"] is None


def test_another_workspace_s_alert_and_rule_answer_404_and_stay_unchanged(member_client):
    client, _ = member_client(Role.OWNER)
    alert = AlertFactory.create()

    for response in (
        client.get(f"/api/alerts/{alert.pk}/"),
        client.post(f"/api/alerts/{alert.pk}/resolve"),
        client.patch(f"{RULES}{alert.rule_id}/", {"severity": "low"}, format="json"),
        client.delete(f"{RULES}{alert.rule_id}/"),
    ):
        assert response.status_code == 404
    alert.refresh_from_db()
    assert alert.state == "open" and alert.rule is not None and alert.rule.severity == "high"


def test_an_admin_creates_a_sentiment_rule_with_the_default_threshold_or_its_own(member_client, workspace):
    client, _ = member_client(Role.ADMIN)

    default = client.post(RULES, {"name": "Angry", "kind": "sentiment", "severity": "high"}, format="json")
    own = client.post(
        RULES, {"name": "Furious", "kind": "sentiment", "threshold": -0.7, "classifier": "llm"}, format="json"
    )

    assert (default.status_code, own.status_code) == (201, 201), (default.content, own.content)
    assert (default.json()["kind"], default.json()["threshold"], own.json()["threshold"]) == (
        "sentiment",
        -0.3,
        -0.7,
    )
    assert (default.json()["classifier"], own.json()["classifier"]) == ("lexicon", "llm")
    assert set(
        AlertRule.objects.filter(workspace=workspace).values_list("kind", "threshold", "classifier")
    ) == {("sentiment", -0.3, "lexicon"), ("sentiment", -0.7, "llm")}


def test_patching_a_sentiment_rule_s_threshold_out_of_range_is_refused(member_client, workspace):
    client, _ = member_client(Role.ADMIN)
    rule = AlertRuleFactory.create(workspace=workspace, kind="sentiment", keywords=[], threshold=-0.5)

    refused = client.patch(f"{RULES}{rule.pk}/", {"threshold": 0.2}, format="json")
    taken = client.patch(f"{RULES}{rule.pk}/", {"threshold": -0.2}, format="json")

    assert (refused.status_code, taken.status_code) == (400, 200)
    rule.refresh_from_db()
    assert rule.threshold == -0.2
