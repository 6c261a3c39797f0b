"""The dashboard's and the admin's session logins share the API's failed-login counters."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (3, 900), "ip": (100, 900)}
    return MembershipFactory.create()


def test_dashboard_guesses_lock_the_username_even_with_the_right_password_then(member):
    client = Client()
    for _ in range(3):
        wrong = client.post("/login/", {"username": member.user.username, "password": "wrong-password-1"})
        assert wrong.status_code == 200

    blocked = client.post("/login/", {"username": member.user.username, "password": PASSWORD})

    assert blocked.status_code == 429
    assert 0 < int(blocked["Retry-After"]) <= 901
    assert b"Too many failed logins" in blocked.content
    assert client.get("/inbox/").status_code == 302  # still logged out


def test_guesses_on_the_dashboard_count_against_the_api_login_and_back(member):
    for _ in range(2):
        Client().post("/login/", {"username": member.user.username, "password": "wrong-password-1"})
    api = APIClient().post(
        "/api/auth/login", {"username": member.user.username, "password": "wrong-password-2"}, format="json"
    )

    dashboard = Client().post("/login/", {"username": member.user.username, "password": PASSWORD})
    api_after = APIClient().post(
        "/api/auth/login", {"username": member.user.username, "password": PASSWORD}, format="json"
    )

    assert api.status_code == 401
    assert dashboard.status_code == 429
    assert api_after.status_code == 429


def test_a_successful_dashboard_login_resets_the_counter(member):
    client = Client()
    for _ in range(2):
        client.post("/login/", {"username": member.user.username, "password": "wrong-password-1"})

    ok = client.post("/login/", {"username": member.user.username, "password": PASSWORD})
    Client().post("/login/", {"username": member.user.username, "password": "wrong-password-1"})
    again = Client().post("/login/", {"username": member.user.username, "password": PASSWORD})

    assert ok.status_code == 302
    assert again.status_code == 302  # one fresh failure after the reset is below the limit of 3


def test_the_admin_login_is_locked_by_the_same_counters(member):
    member.user.is_staff = True
    member.user.is_superuser = True
    member.user.save()
    for _ in range(3):
        APIClient().post(
            "/api/auth/login",
            {"username": member.user.username, "password": "wrong-password-1"},
            format="json",
        )
    client = Client()

    response = client.post(
        "/admin/login/?next=/admin/", {"username": member.user.username, "password": PASSWORD}
    )

    assert response.status_code == 200
    assert b"Too many failed logins" in response.content
    assert client.get("/admin/").status_code == 302  # not logged in


def test_wrong_passwords_on_the_admin_count_too(member):
    for _ in range(3):
        Client().post("/admin/login/", {"username": member.user.username, "password": "wrong-password-1"})

    api = APIClient().post(
        "/api/auth/login", {"username": member.user.username, "password": PASSWORD}, format="json"
    )

    assert api.status_code == 429


def test_the_refusal_speaks_spanish_to_a_spanish_browser(member):
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    for _ in range(3):
        client.post("/login/", {"username": member.user.username, "password": "wrong-password-1"})

    blocked = client.post("/login/", {"username": member.user.username, "password": PASSWORD})

    assert blocked.status_code == 429
    assert "Demasiados intentos fallidos; vuelve a intentarlo en 15 min." in blocked.content.decode()


def test_the_dashboard_counts_every_spelling_and_the_email_against_the_account(settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (3, 900), "ip": (100, 900)}
    MembershipFactory.create(user__username="isabel", user__email="isabel@example.com")
    for name in ["ısabel", "ISABEL"]:
        Client().post("/login/", {"username": name, "password": "wrong-password-1"})
    APIClient().post("/api/auth/login", {"username": "iſabel", "password": "wrong-password-2"}, format="json")

    client = Client()

    by_email = client.post("/login/", {"username": "ISABEL@example.com", "password": PASSWORD})

    assert by_email.status_code == 429
    assert client.get("/inbox/").status_code == 302  # still logged out
