"""The API's doors to assigning, notes, file links and canned replies (the services are tested in
test_desk.py): what they answer, and what bad input gets."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from apps.conversations.models import CannedReply, Conversation, InternalNote, Message
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(member_client):
    def make(workspace):
        return ConversationFactory.create(channel=ChannelFactory.create(workspace=workspace))

    return make


def test_assigning_through_the_api(member_client, conversation):
    client, agent = member_client(Role.AGENT)
    row = conversation(agent.workspace)
    teammate = MembershipFactory.create(workspace=agent.workspace, role=Role.AGENT)

    given = client.post(f"/api/conversations/{row.pk}/assign", {"assignee": teammate.user_id}, format="json")
    refused = client.post(f"/api/conversations/{row.pk}/assign", {"assignee": "me"}, format="json")
    cleared = client.post(f"/api/conversations/{row.pk}/assign", {"assignee": None}, format="json")

    assert given.status_code == 200 and given.json()["assignee"]["id"] == teammate.user_id
    assert refused.status_code == 400
    assert cleared.status_code == 200 and cleared.json()["assignee"] is None


def test_a_viewer_cannot_be_assigned(member_client, conversation):
    client, agent = member_client(Role.AGENT)
    row = conversation(agent.workspace)
    viewer = MembershipFactory.create(workspace=agent.workspace, role=Role.VIEWER)

    response = client.post(f"/api/conversations/{row.pk}/assign", {"assignee": viewer.user_id}, format="json")

    assert response.status_code == 400
    assert Conversation.objects.get(pk=row.pk).assignee_id is None


def test_notes_are_added_and_listed_but_never_among_the_messages(member_client, conversation):
    client, agent = member_client(Role.AGENT)
    row = conversation(agent.workspace)

    added = client.post(f"/api/conversations/{row.pk}/notes/", {"body": "Prefers e-mail"}, format="json")
    blank = client.post(f"/api/conversations/{row.pk}/notes/", {"body": "   "}, format="json")
    listed = client.get(f"/api/conversations/{row.pk}/notes/")
    messages = client.get(f"/api/conversations/{row.pk}/messages/")

    assert added.status_code == 201
    assert added.json()["author"]["id"] == agent.user_id
    assert blank.status_code == 400
    assert [n["body"] for n in listed.json()["results"]] == ["Prefers e-mail"]
    assert messages.json()["results"] == []
    assert InternalNote.objects.count() == 1


def test_a_file_link_is_queued_and_a_plain_http_one_refused(member_client, conversation):
    client, agent = member_client(Role.AGENT)
    row = conversation(agent.workspace)
    url = f"/api/conversations/{row.pk}/attachment"

    queued = client.post(
        url, {"kind": "image", "link": "https://cdn.example.com/a.jpg", "caption": "Azul"}, format="json"
    )
    refused = client.post(url, {"kind": "image", "link": "http://cdn.example.com/a.jpg"}, format="json")

    assert queued.status_code == 201, queued.content
    [sent] = queued.json()
    assert (sent["type"], sent["body"], sent["send_state"]) == ("image", "Azul", "pending")
    assert refused.status_code == 400
    assert Message.objects.filter(conversation=row).count() == 1


def test_canned_replies_through_the_api(member_client):
    client, agent = member_client(Role.AGENT)
    supervisor, _ = member_client(Role.SUPERVISOR, ws=agent.workspace)

    made = client.post("/api/canned-replies/", {"title": "Hours", "body": "9-18, {{name}}"}, format="json")
    again = client.post("/api/canned-replies/", {"title": "Hours", "body": "dup"}, format="json")
    found = client.get("/api/canned-replies/", {"q": "hou"})
    not_allowed = client.delete(f"/api/canned-replies/{made.json()['id']}/")
    deleted = supervisor.delete(f"/api/canned-replies/{made.json()['id']}/")

    assert made.status_code == 201
    assert again.status_code == 409
    assert [r["title"] for r in found.json()["results"]] == ["Hours"]
    assert not_allowed.status_code == 403
    assert deleted.status_code == 204
    assert not CannedReply.objects.exists()
