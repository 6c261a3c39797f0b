"""A password change, deactivation or removal from a workspace ends what that user could do with
their open logins (issue 10, item 5). The live socket's side is in apps/dashboard/tests."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import LoginSession, Role
from apps.accounts.tests.conftest import login
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


def api_status(access: str, workspace: str | None = None) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    if workspace:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}", HTTP_X_WORKSPACE=workspace)
    return client.get("/api/accounts/workspace/").status_code


def refresh(raw: str) -> dict:
    return APIClient().post("/api/auth/refresh", {"refresh": raw}, format="json").json()


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def admin_browser() -> Client:
    return browser(UserFactory.create(is_staff=True, is_superuser=True))


def test_a_password_changed_in_the_admin_ends_the_users_api_logins_and_browser_sessions():
    # Given a member with two API logins and a dashboard session, and another member's login
    membership = MembershipFactory.create(role=Role.AGENT)
    first, second = login(APIClient(), membership.user.username), login(APIClient(), membership.user.username)
    dashboard = browser(membership.user)
    bystander = MembershipFactory.create()
    bystander_tokens = login(APIClient(), bystander.user.username)
    admin = admin_browser()
    assert api_status(first["access"]) == 200 and dashboard.get("/inbox/").status_code == 200

    # When an admin sets a new password in the back office
    response = admin.post(
        f"/admin/accounts/user/{membership.user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    # Then every old token and the dashboard session stop working; the new password logs in
    assert response.status_code == 302
    assert api_status(first["access"]) == 401 and api_status(second["access"]) == 401
    assert refresh(first["refresh"])["error"]["code"] == "session_revoked"
    assert dashboard.get("/inbox/").status_code == 302  # sent to the login page
    assert set(
        LoginSession.objects.filter(user=membership.user).values_list("revoked_reason", flat=True)
    ) == {"password_changed"}
    assert login(APIClient(), membership.user.username, NEW_PASSWORD)["access"]
    # ... and nobody else's login, nor the admin's own session, ended with it
    assert api_status(bystander_tokens["access"]) == 200
    assert admin.get("/admin/").status_code == 200


def test_changing_ones_own_password_in_the_admin_keeps_only_that_browser_logged_in():
    staff = MembershipFactory.create(role=Role.OWNER, user__is_staff=True, user__is_superuser=True).user
    tokens = login(APIClient(), staff.username)
    here, elsewhere = browser(staff), browser(staff)

    response = here.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert api_status(tokens["access"]) == 401
    assert elsewhere.get("/admin/").status_code == 302
    assert here.get("/admin/").status_code == 200  # update_session_auth_hash kept this one


def test_disabling_password_login_in_the_admin_ends_the_users_logins():
    membership = MembershipFactory.create()
    tokens = login(APIClient(), membership.user.username)

    admin_browser().post(
        f"/admin/accounts/user/{membership.user.pk}/password/",
        {"usable_password": "false", "unset-password": "1"},
    )

    membership.user.refresh_from_db()
    assert not membership.user.has_usable_password()
    assert api_status(tokens["access"]) == 401


def test_manage_py_changepassword_ends_the_users_logins(monkeypatch):
    membership = MembershipFactory.create()
    tokens = login(APIClient(), membership.user.username)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", membership.user.username, stdout=None)

    assert api_status(tokens["access"]) == 401
    assert refresh(tokens["refresh"])["error"]["code"] == "session_revoked"


def test_a_hash_upgrade_at_login_is_no_password_change(settings):
    # Given a login, and a password stored with a hasher that is no longer the preferred one
    membership = MembershipFactory.create()
    tokens = login(APIClient(), membership.user.username)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    # When the user logs in again, which re-hashes the same password
    login(APIClient(), membership.user.username)

    # Then the first login goes on
    membership.user.refresh_from_db()
    assert membership.user.password.startswith("pbkdf2_sha256$")
    assert api_status(tokens["access"]) == 200
    assert not LoginSession.objects.filter(revoked_at__isnull=False).exists()


def _admin_change_form(user, **changes) -> dict:
    form = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_deactivating_a_user_in_the_admin_ends_their_logins_for_good():
    membership = MembershipFactory.create()
    tokens = login(APIClient(), membership.user.username)
    dashboard = browser(membership.user)
    admin = admin_browser()
    url = f"/admin/accounts/user/{membership.user.pk}/change/"

    deactivated = admin.post(url, _admin_change_form(membership.user, is_active=None))
    reactivated = admin.post(url, _admin_change_form(membership.user))

    assert deactivated.status_code == 302 and reactivated.status_code == 302
    membership.user.refresh_from_db()
    assert membership.user.is_active
    # Reactivation does not bring back the tokens that were out while the account was off
    assert api_status(tokens["access"]) == 401
    assert refresh(tokens["refresh"])["error"]["code"] == "session_revoked"
    assert LoginSession.objects.get(user=membership.user).revoked_reason == "deactivated"
    assert dashboard.get("/inbox/").status_code == 200  # the cookie session was not ended by this


def test_an_admin_edit_that_leaves_active_alone_ends_no_login():
    membership = MembershipFactory.create()
    tokens = login(APIClient(), membership.user.username)

    admin_browser().post(
        f"/admin/accounts/user/{membership.user.pk}/change/",
        _admin_change_form(membership.user, first_name="Ana"),
    )

    assert api_status(tokens["access"]) == 200


def test_after_removal_from_one_workspace_calls_naming_it_fail_and_the_others_go_on():
    # Given a member of two workspaces with one API login
    removed = MembershipFactory.create(role=Role.AGENT)
    kept = MembershipFactory.create(user=removed.user, role=Role.AGENT)
    owner = MembershipFactory.create(workspace=removed.workspace, role=Role.OWNER)
    tokens = login(APIClient(), removed.user.username)
    owner_client = APIClient()
    owner_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(APIClient(), owner.user.username)['access']}")

    # When the owner removes them from the first workspace
    response = owner_client.delete(f"/api/accounts/members/{removed.pk}/")

    # Then a call naming that workspace is refused, calls for the other still work
    assert response.status_code == 204
    assert api_status(tokens["access"], removed.workspace.slug) == 403
    assert api_status(tokens["access"], kept.workspace.slug) == 200
    assert api_status(tokens["access"]) == 200  # no header: their remaining workspace
    assert not LoginSession.objects.filter(user=removed.user, revoked_at__isnull=False).exists()


def test_deleting_a_users_last_membership_in_the_admin_ends_their_logins():
    # Given a member of two workspaces with one API login
    first = MembershipFactory.create(role=Role.AGENT)
    second = MembershipFactory.create(user=first.user, role=Role.AGENT)
    tokens = login(APIClient(), first.user.username)
    admin = admin_browser()

    # When an admin deletes one membership, the user keeps working; when the last goes, logins end
    admin.post(f"/admin/accounts/membership/{first.pk}/delete/", {"post": "yes"})
    still = api_status(tokens["access"])
    admin.post(
        "/admin/accounts/membership/",
        {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"},
    )

    assert still == 200
    assert api_status(tokens["access"]) == 401
    assert LoginSession.objects.get(user=first.user).revoked_reason == "removed"
