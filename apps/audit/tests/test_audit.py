from __future__ import annotations

import json

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from rest_framework.test import APIClient

from apps.accounts import services as account_services
from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory
from apps.assistant.models import KnowledgeEntry
from apps.audit.models import AuditEntry
from apps.audit.services import audit_record
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SECRET = "EAAG-planted-channel-token-0123456789"


def _client(role: str, workspace: Workspace) -> tuple[APIClient, object]:
    membership = MembershipFactory.create(workspace=workspace, role=role)
    pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    client = APIClient(HTTP_USER_AGENT="audit-test/1.0", REMOTE_ADDR="198.51.100.7")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
    return client, membership


def _only_entry(action: str) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, [e.action for e in AuditEntry.objects.all()]
    return entries[0]


def test_member_create_role_change_and_removal_are_recorded():
    workspace = WorkspaceFactory.create()
    client, owner = _client(Role.OWNER, workspace)

    created = client.post(
        "/api/accounts/members/",
        {"username": "newbie", "email": "", "password": "a-long-enough-passphrase", "role": "agent"},
        format="json",
    )
    member_id = created.json()["id"]
    client.patch(f"/api/accounts/members/{member_id}/", {"role": "supervisor"}, format="json")
    client.delete(f"/api/accounts/members/{member_id}/")

    create, change, remove = (
        _only_entry(a) for a in ("member.create", "member.role_change", "member.remove")
    )
    for entry in (create, change, remove):
        assert (entry.workspace_id, entry.actor_id) == (workspace.pk, owner.user_id)
        assert (entry.target_type, entry.target_id) == ("accounts.membership", str(member_id))
        assert (entry.ip, entry.user_agent) == ("198.51.100.7", "audit-test/1.0")
    assert create.details["role"] == "agent"
    assert change.details | {"user_id": 0} == {"user_id": 0, "role_before": "agent", "role": "supervisor"}
    assert remove.details["role"] == "supervisor"
    assert "a-long-enough-passphrase" not in json.dumps(create.details)


def test_a_refused_member_change_records_nothing():
    workspace = WorkspaceFactory.create()
    client, _ = _client(Role.AGENT, workspace)
    target = MembershipFactory.create(workspace=workspace, role=Role.VIEWER)

    response = client.patch(f"/api/accounts/members/{target.pk}/", {"role": "agent"}, format="json")

    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_channel_create_update_delete_are_recorded_without_secrets(cloud_settings, graph_standin):
    workspace = WorkspaceFactory.create()
    client, admin = _client(Role.ADMIN, workspace)
    graph_standin.add_number("555000111", SECRET)
    graph_standin.add_number("555000111", SECRET + "-2")

    created = client.post(
        "/api/whatsapp/channels/",
        {"kind": "cloud", "phone_number_id": "555000111", "access_token": SECRET, "app_secret": "s3"},
        format="json",
    )
    channel_id = created.json()["id"]
    client.patch(f"/api/whatsapp/channels/{channel_id}/", {"access_token": SECRET + "-2"}, format="json")
    client.delete(f"/api/whatsapp/channels/{channel_id}/")

    entries = list(AuditEntry.objects.order_by("pk"))
    assert [e.action for e in entries] == ["channel.create", "channel.update", "channel.delete"]
    assert {(e.target_type, e.target_id) for e in entries} == {("whatsapp.channel", str(channel_id))}
    assert "access_token" in entries[1].details["fields"]
    assert SECRET not in json.dumps([e.details for e in entries])


def test_provider_changes_are_recorded_without_the_key():
    workspace = WorkspaceFactory.create()
    client, _ = _client(Role.ADMIN, workspace)

    response = client.put(
        "/api/business/providers",
        {"fallback_order": ["openai", "offline"], "providers": [{"provider": "openai", "api_key": SECRET}]},
        format="json",
    )

    assert response.status_code == 200, response.content
    entry = _only_entry("providers.update")
    assert entry.details == {
        "fallback_order": ["openai", "offline"],
        "providers": {"openai": ["api_key", "provider"]},
    }
    assert SECRET not in json.dumps(entry.details)


def test_takeover_and_deletions_of_contacts_and_knowledge_are_recorded():
    workspace = WorkspaceFactory.create()
    client, supervisor = _client(Role.SUPERVISOR, workspace)
    conversation = ConversationFactory.create(channel=ChannelFactory(workspace=workspace))
    other = ConversationFactory.create(channel=ChannelFactory(workspace=workspace))
    entry = KnowledgeEntry.objects.create(workspace_id=workspace.pk, title="Opening hours", content="9-5")

    codes = [
        client.post(f"/api/conversations/{conversation.pk}/takeover").status_code,
        client.delete(f"/api/contacts/{other.contact_id}/").status_code,
        client.delete(f"/api/business/knowledge/{entry.pk}/").status_code,
    ]

    assert codes == [200, 204, 204]
    takeover = _only_entry("conversation.takeover")
    assert (takeover.target_type, takeover.target_id) == ("conversations.conversation", str(conversation.pk))
    contact = _only_entry("contact.delete")
    assert (contact.target_id, contact.details) == (str(other.contact_id), {})
    knowledge = _only_entry("knowledge.delete")
    assert knowledge.details == {"title": "Opening hours"}
    assert {e.actor_id for e in AuditEntry.objects.all()} == {supervisor.user_id}


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.VIEWER, 403), (Role.AGENT, 403), (Role.SUPERVISOR, 403), (Role.ADMIN, 200), (Role.OWNER, 200)],
)
def test_only_admins_and_owners_read_the_log(role, status):
    workspace = WorkspaceFactory.create()
    client, _ = _client(role, workspace)

    assert client.get("/api/audit/").status_code == status


def test_the_log_shows_this_workspace_only_and_filters_by_action_and_actor():
    mine, theirs = WorkspaceFactory.create(), WorkspaceFactory.create()
    client, owner = _client(Role.OWNER, mine)
    other = MembershipFactory.create(workspace=mine, role=Role.ADMIN)
    audit_record(workspace_id=mine.pk, actor_id=owner.user_id, action="channel.create")
    audit_record(workspace_id=mine.pk, actor_id=other.user_id, action="channel.delete")
    audit_record(workspace_id=theirs.pk, actor_id=None, action="channel.create")

    everything = client.get("/api/audit/").json()
    by_action = client.get("/api/audit/", {"action": "channel.create"}).json()
    by_actor = client.get("/api/audit/", {"actor": other.user_id}).json()

    assert [r["action"] for r in everything["results"]] == ["channel.delete", "channel.create"]
    assert [r["actor"]["id"] for r in by_action["results"]] == [owner.user_id]
    assert [r["action"] for r in by_actor["results"]] == ["channel.delete"]
    assert client.get("/api/audit/", {"actor": "x"}).status_code == 400
    # Beyond any database id: once a 500 (found by schemathesis).
    assert client.get("/api/audit/", {"actor": 2**63}).status_code == 400


def test_entries_are_append_only():
    entry = audit_record(workspace_id=None, actor_id=None, action="x")

    entry.action = "y"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get().action == "x"
    admin = site._registry[AuditEntry]
    request = RequestFactory().get("/admin/")
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request, entry)
    assert not admin.has_delete_permission(request, entry)


def test_a_change_whose_entry_cannot_be_written_is_undone(monkeypatch):
    """The change and its entry share one transaction: no role change without its trace."""
    workspace = WorkspaceFactory.create()
    client, _ = _client(Role.OWNER, workspace)
    member = MembershipFactory.create(workspace=workspace, role=Role.AGENT)

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr("apps.accounts.services.audit_record", broken)
    client.raise_request_exception = False
    response = client.patch(f"/api/accounts/members/{member.pk}/", {"role": "supervisor"}, format="json")

    assert response.status_code == 500
    member.refresh_from_db()
    assert member.role == Role.AGENT


def test_dashboard_takeover_knowledge_delete_and_provider_changes_are_recorded():
    from django.test import Client

    workspace = WorkspaceFactory.create()
    admin = MembershipFactory.create(workspace=workspace, role=Role.ADMIN)
    client = Client(HTTP_USER_AGENT="browser/1.0", REMOTE_ADDR="203.0.113.9")
    client.force_login(admin.user)
    conversation = ConversationFactory.create(channel=ChannelFactory(workspace=workspace))
    entry = KnowledgeEntry.objects.create(workspace_id=workspace.pk, title="Prices", content="10 EUR")

    codes = [
        client.post(f"/conversations/{conversation.pk}/takeover/").status_code,
        client.post(f"/conversations/{conversation.pk}/handback/").status_code,
        client.post(f"/business/knowledge/{entry.pk}/delete/").status_code,
        client.post(
            "/business/providers/",
            {
                "fallback_order": "openai",
                "openai-enabled": "on",
                "openai-model": "m",
                "openai-api_key": SECRET,
            },
        ).status_code,
    ]

    assert codes == [302, 302, 302, 302]
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == [
        "conversation.takeover",
        "knowledge.delete",
        "providers.update",
    ]
    for audit in AuditEntry.objects.all():
        assert (audit.actor_id, audit.ip, audit.user_agent) == (admin.user_id, "203.0.113.9", "browser/1.0")
    assert _only_entry("knowledge.delete").details == {"title": "Prices"}
    assert _only_entry("providers.update").details["providers"]["openai"] == [
        "api_key",
        "base_url",
        "enabled",
        "model",
        "provider",
    ]
    assert SECRET not in json.dumps([e.details for e in AuditEntry.objects.all()])
