from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role
from apps.accounts.tests.conftest import login
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

NEW_MEMBER = {
    "username": "newbie",
    "email": "newbie@example.com",
    "password": "a-long-enough-passphrase",
    "role": "agent",
}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR])
def test_below_admin_can_list_members_but_not_manage_them(member_client, role):
    client, membership = member_client(role)
    target = MembershipFactory(workspace=membership.workspace, role=Role.AGENT)

    listed = client.get("/api/accounts/members/")
    created = client.post("/api/accounts/members/", NEW_MEMBER, format="json")
    changed = client.patch(f"/api/accounts/members/{target.pk}/", {"role": "viewer"}, format="json")
    removed = client.delete(f"/api/accounts/members/{target.pk}/")

    assert listed.status_code == 200
    assert {row["user"]["username"] for row in listed.json()["results"]} == {
        membership.user.username,
        target.user.username,
    }
    assert (created.status_code, changed.status_code, removed.status_code) == (403, 403, 403)
    assert created.json()["error"]["code"] == "permission_denied"
    target.refresh_from_db()
    assert target.role == Role.AGENT
    assert not Membership.objects.filter(user__username__startswith="newbie").exists()


def test_viewer_cannot_write_the_workspace(member_client):
    client, membership = member_client(Role.VIEWER)

    response = client.patch("/api/accounts/workspace/", {"name": "Hijacked"}, format="json")

    assert response.status_code == 403
    membership.workspace.refresh_from_db()
    assert membership.workspace.name != "Hijacked"


def test_admin_manages_members_and_the_new_member_can_log_in(member_client):
    client, admin = member_client(Role.ADMIN)

    created = client.post("/api/accounts/members/", NEW_MEMBER, format="json")
    member_id = created.json()["id"]
    promoted = client.patch(f"/api/accounts/members/{member_id}/", {"role": "supervisor"}, format="json")

    assert created.status_code == 201
    assert "password" not in created.json()
    assert created.json()["user"]["username"] == f"newbie.{admin.workspace.slug}"  # the login name
    assert promoted.json()["role"] == "supervisor"
    assert login(APIClient(), f"newbie.{admin.workspace.slug}", NEW_MEMBER["password"])["access"]
    assert client.delete(f"/api/accounts/members/{member_id}/").status_code == 204
    assert not Membership.objects.filter(pk=member_id).exists()


def test_admin_cannot_grant_owner_nor_touch_an_owner(member_client):
    client, admin = member_client(Role.ADMIN)
    owner = MembershipFactory(workspace=admin.workspace, role=Role.OWNER)

    grant = client.post("/api/accounts/members/", {**NEW_MEMBER, "role": "owner"}, format="json")
    demote = client.patch(f"/api/accounts/members/{owner.pk}/", {"role": "viewer"}, format="json")

    assert grant.status_code == 403
    assert demote.status_code == 403
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_the_last_owner_cannot_be_demoted_or_removed(member_client):
    client, owner = member_client(Role.OWNER)

    demote = client.patch(f"/api/accounts/members/{owner.pk}/", {"role": "admin"}, format="json")
    remove = client.delete(f"/api/accounts/members/{owner.pk}/")

    assert demote.status_code == 409 and demote.json()["error"]["code"] == "last_owner"
    assert remove.status_code == 409


def test_weak_or_short_passwords_are_refused(member_client):
    client, _ = member_client(Role.ADMIN)

    short = client.post("/api/accounts/members/", {**NEW_MEMBER, "password": "Sh0rt!pass"}, format="json")

    assert short.status_code == 400
    assert "at least 12 characters" in str(short.json()["error"]["details"])


def test_members_of_another_workspace_answer_404(member_client):
    client, admin = member_client(Role.OWNER)
    foreign = MembershipFactory(workspace=WorkspaceFactory(), role=Role.AGENT)
    path = f"/api/accounts/members/{foreign.pk}/"

    responses = [client.get(path), client.patch(path, {"role": "viewer"}, format="json"), client.delete(path)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert responses[0].json()["error"]["code"] == "not_found"
    assert foreign.user.username not in str(client.get("/api/accounts/members/").json())
    foreign.refresh_from_db()
    assert foreign.role == Role.AGENT


def test_x_workspace_header_picks_one_of_the_users_workspaces():
    user = UserFactory()
    first = MembershipFactory(user=user, role=Role.VIEWER)
    second = MembershipFactory(user=user, role=Role.ADMIN)
    stranger_ws = WorkspaceFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.username)['access']}")

    default = client.get("/api/auth/me").json()
    chosen = client.get("/api/auth/me", HTTP_X_WORKSPACE=second.workspace.slug).json()
    outsider = client.get("/api/accounts/workspace/", HTTP_X_WORKSPACE=stranger_ws.slug)

    assert (default["workspace"]["slug"], default["role"]) == (first.workspace.slug, "viewer")
    assert (chosen["workspace"]["slug"], chosen["role"]) == (second.workspace.slug, "admin")
    assert len(chosen["memberships"]) == 2
    assert outsider.status_code == 403


def test_a_user_removed_from_every_workspace_is_logged_out(member_client):
    client, owner = member_client(Role.OWNER)
    other_client, member = member_client(Role.AGENT)

    client.delete(f"/api/accounts/members/{member.pk}/")

    assert other_client.get("/api/auth/me").status_code == 401


def test_passwords_are_hashed_with_bcrypt_by_default(settings):
    from chatbot import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    user = UserFactory()

    assert project_settings.PASSWORD_HASHERS[0].endswith("BCryptSHA256PasswordHasher")
    assert user.password.startswith("bcrypt_sha256$")
    assert user.check_password("correct-horse-battery-staple")
