"""One audit entry per change, whatever the door: the services that make the change write it."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts import services as account_services
from apps.accounts.models import Membership, Role, User
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory
from apps.assistant.models import KnowledgeEntry
from apps.audit.models import AuditEntry
from apps.conversations.models import Contact, Conversation
from apps.conversations.services import actions
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db


def _take_over(door: str, membership: Membership, conversation: Conversation) -> None:
    if door == "api":
        pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
        api = APIClient(HTTP_USER_AGENT="door/1.0", REMOTE_ADDR="198.51.100.8")
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
        assert api.post(f"/api/conversations/{conversation.pk}/takeover").status_code == 200
    elif door == "dashboard":
        client = Client(HTTP_USER_AGENT="door/1.0", REMOTE_ADDR="198.51.100.8")
        client.force_login(membership.user)
        assert client.post(f"/conversations/{conversation.pk}/takeover/").status_code == 302
    else:
        actions.conversation_takeover(conversation=conversation, user=membership.user)


@pytest.mark.parametrize("door", ["api", "dashboard", "service"])
def test_a_takeover_leaves_exactly_one_entry_whatever_the_door(door):
    agent = MembershipFactory.create(role=Role.AGENT)
    conversation = ConversationFactory.create(channel__workspace=agent.workspace)

    _take_over(door, agent, conversation)

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.workspace_id, entry.actor_id) == (
        "conversation.takeover",
        agent.workspace_id,
        agent.user_id,
    )
    assert (entry.target_type, entry.target_id) == ("conversations.conversation", str(conversation.pk))
    # Only a request knows where it came from; a direct call records no address.
    want = (None, "") if door == "service" else ("198.51.100.8", "door/1.0")
    assert (entry.ip, entry.user_agent) == want


def test_a_takeover_whose_entry_cannot_be_written_does_not_happen(monkeypatch):
    agent = MembershipFactory.create(role=Role.AGENT)
    conversation = ConversationFactory.create(channel__workspace=agent.workspace)

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr("apps.conversations.services.actions.audit_record", broken)
    with pytest.raises(RuntimeError):
        actions.conversation_takeover(conversation=conversation, user=agent.user)

    conversation.refresh_from_db()
    assert conversation.assignee_id is None
    assert conversation.status == Conversation.Status.OPEN


def test_deletions_in_the_django_admin_are_recorded_once_with_the_admin_as_actor():
    workspace = WorkspaceFactory.create()
    MembershipFactory.create(workspace=workspace, role=Role.OWNER)  # the last owner is never the target
    superuser = User.objects.create_superuser(username="root", email="", password=PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.10")
    client.force_login(superuser)
    conversation = ConversationFactory.create(channel__workspace=workspace)
    other = ConversationFactory.create(channel__workspace=workspace)
    entry = KnowledgeEntry.objects.create(workspace_id=workspace.pk, title="Parking", content="Yes")
    member = MembershipFactory.create(workspace=workspace, role=Role.AGENT)
    targets = {
        "knowledge.delete": ("assistant/knowledgeentry", entry.pk),
        "contact.delete": ("conversations/contact", conversation.contact_id),
        "channel.delete": ("whatsapp/channel", other.channel_id),
        "member.remove": ("accounts/membership", member.pk),
    }

    codes = [
        client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code
        for model, pk in targets.values()
    ]

    assert codes == [302, 302, 302, 302]
    assert not KnowledgeEntry.objects.filter(pk=entry.pk).exists()
    assert not Contact.objects.filter(pk=conversation.contact_id).exists()
    assert not Channel.objects.filter(pk=other.channel_id).exists()
    entries = list(AuditEntry.objects.order_by("pk"))
    assert [e.action for e in entries] == list(targets)
    for audit, (_, pk) in zip(entries, targets.values(), strict=True):
        assert (audit.workspace_id, audit.actor_id, audit.target_id) == (workspace.pk, superuser.pk, str(pk))
        assert audit.ip == "203.0.113.10"
