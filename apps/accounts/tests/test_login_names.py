"""Issue 10, item 7: a login name resolves to exactly one account, and creating a member reveals
nothing about other workspaces' accounts. Item 4: names and e-mails are normalised."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role, User
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "the-newcomers-own-passphrase"


def _admin_client(slug: str) -> tuple[APIClient, Membership]:
    admin = MembershipFactory.create(workspace=WorkspaceFactory.create(slug=slug), role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(admin.user)
    return client, admin


def _login(username: str, password: str) -> tuple[int, str | None]:
    """(status, username of the account the tokens are for)."""
    client = APIClient()
    response = client.post("/api/auth/login", {"username": username, "password": password}, format="json")
    if response.status_code != 200:
        return response.status_code, None
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return 200, client.get("/api/auth/me").json()["user"]["username"]


def test_an_email_equal_to_another_tenants_username_does_not_take_over_that_login():
    # given B, an account from before usernames refused "@", in workspace b
    boss = MembershipFactory(user__username="boss@b.test", user__email="boss@elsewhere.test")
    client, _ = _admin_client("acme")

    # when an admin of another workspace creates a user whose e-mail is B's username
    created = client.post(
        "/api/accounts/members/",
        {"username": "intruder", "email": "Boss@B.test", "password": NEW_PASSWORD, "role": "agent"},
        format="json",
    )

    # then B still logs in with her password, and the newcomer's password does not log in as B
    assert created.status_code == 201
    assert _login("boss@b.test", PASSWORD) == (200, "boss@b.test")
    assert _login("BOSS@b.test", PASSWORD) == (200, "boss@b.test")
    assert _login("boss@b.test", NEW_PASSWORD) == (401, None)
    assert _login("intruder.acme", NEW_PASSWORD) == (200, "intruder.acme")
    assert boss.user.login_sessions.count() == 2


def test_an_email_held_by_several_accounts_logs_in_the_oldest_only():
    first = UserFactory(username="ana", email="ana@example.com")
    UserFactory(username="ana2", email="ANA@example.com")  # a later account in another workspace
    first.set_password("the-first-accounts-passphrase")
    first.save()

    assert _login("ana@example.com", "the-first-accounts-passphrase") == (200, "ana")
    assert _login("ana@example.com", PASSWORD) == (401, None)  # the second account's password
    assert _login("ana2", PASSWORD) == (200, "ana2")


def test_creating_a_member_never_reveals_another_workspaces_usernames_or_emails():
    # given workspace "other" with a member "ana" (namespaced) and a legacy global account "ana"
    other_client, _ = _admin_client("other")
    other_client.post(
        "/api/accounts/members/",
        {"username": "ana", "email": "ana@example.com", "password": NEW_PASSWORD, "role": "agent"},
        format="json",
    )
    UserFactory(username="ana", email="ana@legacy.test")
    client, admin = _admin_client("acme")

    created = client.post(
        "/api/accounts/members/",
        {"username": "Ana", "email": "ANA@example.com", "password": NEW_PASSWORD, "role": "agent"},
        format="json",
    )

    assert created.status_code == 201, created.json()
    assert created.json()["user"]["username"] == "ana.acme"
    assert created.json()["user"]["email"] == "ana@example.com"
    assert sorted(User.objects.filter(email="ana@example.com").values_list("username", flat=True)) == [
        "ana.acme",
        "ana.other",
    ]


def test_a_taken_name_or_email_is_refused_only_within_the_admins_own_workspace():
    client, admin = _admin_client("acme")
    body = {"username": "ana", "email": "ana@example.com", "password": NEW_PASSWORD, "role": "agent"}
    client.post("/api/accounts/members/", body, format="json")

    same_name = client.post("/api/accounts/members/", {**body, "email": ""}, format="json")
    same_email = client.post("/api/accounts/members/", {**body, "username": "ana-b"}, format="json")

    assert same_name.status_code == 409
    assert same_name.json()["error"] == {
        "code": "username_taken",
        "message": "ana.acme is taken in this workspace.",
    }
    assert same_email.status_code == 409
    assert same_email.json()["error"]["code"] == "email_taken"
    assert Membership.objects.filter(workspace=admin.workspace).count() == 2  # the admin and ana


@pytest.mark.parametrize("username", ["ana@acme", "a@b.test"])
def test_usernames_with_an_at_sign_or_spaces_are_refused(username):
    client, admin = _admin_client("acme")

    response = client.post(
        "/api/accounts/members/",
        {"username": username, "email": "", "password": NEW_PASSWORD, "role": "agent"},
        format="json",
    )

    assert response.status_code == 400
    assert "username" in response.json()["error"]["details"]
    assert Membership.objects.filter(workspace=admin.workspace).count() == 1


def test_usernames_and_emails_are_saved_normalised():
    user = UserFactory(username="Straße", email="İsa.Boſs@Example.COM")

    user.refresh_from_db()

    assert (user.username, user.email) == ("strasse", "i̇sa.boss@example.com")
    assert _login("STRASSE", PASSWORD) == (200, "strasse")
    assert _login("ﬅrasse", PASSWORD) == (200, "strasse")  # NFKC: the "st" ligature


def test_the_data_migration_folds_existing_rows_and_leaves_a_colliding_one_with_a_log(caplog):
    migration = importlib.import_module("apps.accounts.migrations.0002_login_names_normalised")
    # rows as they were before: bulk_create skips User.save(), which would fold them
    User.objects.bulk_create(
        [
            User(username="Ana", email="Ana@Example.COM"),
            User(username="ana", email="ana@example.com"),
            User(username="Straße", email="İsa@X.test"),
        ]
    )

    migration.normalise_login_names(django_apps, None)

    rows = list(User.objects.order_by("pk").values_list("username", "email"))
    assert rows == [
        ("Ana", "ana@example.com"),  # "ana" is another account's: left, and logged
        ("ana", "ana@example.com"),
        ("strasse", "i̇sa@x.test"),
    ]
    assert [r.getMessage() for r in caplog.records if r.name == migration.__name__] == [
        f"user {User.objects.get(username='Ana').pk}: username 'Ana' left as it is: "
        "its normalised spelling 'ana' belongs to another account"
    ]
    legacy = User.objects.get(username="Ana")
    legacy.set_password("the-legacy-passphrase")
    User.objects.filter(pk=legacy.pk).update(password=legacy.password)
    assert _login("Ana", "the-legacy-passphrase") == (200, "Ana")  # its exact spelling still logs in
    assert _login("ANA", "the-legacy-passphrase") == (401, None)  # other spellings name "ana"
