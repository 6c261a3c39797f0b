from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import LoginSession, Role
from apps.accounts.tests.conftest import login
from apps.accounts.tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


def bearer(client: APIClient, token: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_login_by_username_or_email_returns_tokens_and_me_describes_the_member(api_client):
    membership = MembershipFactory(role=Role.SUPERVISOR, user__email="Ana@Example.com")

    by_name = login(api_client, membership.user.username)
    by_email = login(api_client, "ana@example.com")

    assert set(by_name) == {"access", "refresh"} and set(by_email) == {"access", "refresh"}
    me = bearer(api_client, by_email["access"]).get("/api/auth/me").json()
    assert me["user"]["username"] == membership.user.username
    assert me["workspace"]["slug"] == membership.workspace.slug
    assert me["role"] == "supervisor"
    assert "password" not in str(me)
    assert LoginSession.objects.filter(user=membership.user).count() == 2


def test_wrong_password_is_401_with_the_error_shape(api_client):
    membership = MembershipFactory()

    response = api_client.post(
        "/api/auth/login", {"username": membership.user.username, "password": "nope-nope-nope"}, format="json"
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "invalid_credentials", "message": "Wrong username or password."}
    }
    assert not LoginSession.objects.exists()


def test_malformed_login_body_is_400():
    response = APIClient().post("/api/auth/login", {"username": "x"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "password" in response.json()["error"]["details"]


def test_refresh_rotates_and_the_old_refresh_token_is_blacklisted(api_client):
    membership = MembershipFactory()
    first = login(api_client, membership.user.username)

    rotated = api_client.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh"] != first["refresh"]
    assert bearer(APIClient(), second["access"]).get("/api/auth/me").status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_every_token_of_that_login(api_client):
    membership = MembershipFactory()
    first = login(api_client, membership.user.username)
    other_login = login(api_client, membership.user.username)
    second = api_client.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json").json()

    reuse = api_client.post("/api/auth/refresh", {"refresh": first["refresh"]}, format="json")

    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "token_reused"
    # the whole family is dead: the rotated pair and the original access token...
    assert (
        api_client.post("/api/auth/refresh", {"refresh": second["refresh"]}, format="json").status_code == 401
    )
    assert bearer(APIClient(), second["access"]).get("/api/auth/me").status_code == 401
    assert bearer(APIClient(), first["access"]).get("/api/auth/me").status_code == 401
    # ...but another login of the same user is untouched
    assert bearer(APIClient(), other_login["access"]).get("/api/auth/me").status_code == 200


def test_logout_stops_the_current_access_and_refresh_tokens(api_client):
    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)
    client = bearer(APIClient(), tokens["access"])

    response = client.post("/api/auth/logout", {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    assert (
        api_client.post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json").status_code == 401
    )
    assert LoginSession.objects.get(user=membership.user).revoked_reason == "logout"


def test_expired_access_token_is_401(api_client):
    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)
    token = AccessToken(tokens["access"])
    token.set_exp(lifetime=-timedelta(seconds=1))

    assert bearer(api_client, str(token)).get("/api/auth/me").status_code == 401


def test_expired_refresh_token_is_401_and_issues_nothing(api_client):
    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)
    token = RefreshToken(tokens["refresh"])
    token.set_exp(lifetime=-timedelta(seconds=1))  # re-signed with our key: only the expiry is wrong

    response = api_client.post("/api/auth/refresh", {"refresh": str(token)}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    assert "access" not in response.json()


def test_refresh_token_is_not_an_access_token_and_vice_versa(api_client):
    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)

    as_access = bearer(APIClient(), tokens["refresh"]).get("/api/auth/me")
    as_refresh = api_client.post("/api/auth/refresh", {"refresh": tokens["access"]}, format="json")

    assert as_access.status_code == 401
    assert as_refresh.status_code == 401


@pytest.mark.parametrize("variant", ["alg_none", "other_key", "hs512", "tampered"])
def test_forged_tokens_are_401(api_client, variant):
    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)
    payload = jwt.decode(tokens["access"], settings.JWT_SECRET, algorithms=["HS256"])
    if variant == "alg_none":
        forged = jwt.encode(payload, key=None, algorithm="none")
    elif variant == "other_key":
        forged = jwt.encode(payload, "another-secret-another-secret-another-secret", algorithm="HS256")
    elif variant == "hs512":
        forged = jwt.encode(payload, settings.JWT_SECRET, algorithm="HS512")
    else:
        header, body, signature = tokens["access"].split(".")
        other = jwt.encode(
            {**payload, "user_id": str(int(payload["user_id"]) + 1)}, "x" * 32, algorithm="HS256"
        )
        forged = ".".join([header, other.split(".")[1], signature])

    assert bearer(APIClient(), forged).get("/api/auth/me").status_code == 401


def test_refresh_token_not_issued_by_us_is_401(api_client):
    membership = MembershipFactory()
    token = RefreshToken.for_user(membership.user)  # valid signature, but carries no login session
    token.outstand()

    assert api_client.post("/api/auth/refresh", {"refresh": str(token)}, format="json").status_code == 401
    assert bearer(APIClient(), str(token.access_token)).get("/api/auth/me").status_code == 401


def test_repeated_failed_logins_per_username_give_429_with_retry_after(api_client, settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (3, 900), "ip": (100, 900)}
    membership = MembershipFactory()
    for _ in range(3):
        bad = api_client.post(
            "/api/auth/login",
            {"username": membership.user.username, "password": "wrong-password-1"},
            format="json",
        )
        assert bad.status_code == 401

    blocked = api_client.post(
        "/api/auth/login", {"username": membership.user.username, "password": PASSWORD}, format="json"
    )

    assert blocked.status_code == 429
    assert 0 < int(blocked["Retry-After"]) <= 901
    assert blocked.json()["error"]["code"] == "throttled"
    assert not LoginSession.objects.exists()


def test_repeated_failed_logins_per_ip_give_429_for_any_username(api_client, settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (100, 900), "ip": (4, 900)}
    membership = MembershipFactory()
    for n in range(4):
        api_client.post(
            "/api/auth/login", {"username": f"ghost{n}", "password": "whatever-pass"}, format="json"
        )

    blocked = api_client.post(
        "/api/auth/login", {"username": membership.user.username, "password": PASSWORD}, format="json"
    )
    from_elsewhere = APIClient(REMOTE_ADDR="10.9.8.7").post(
        "/api/auth/login", {"username": membership.user.username, "password": PASSWORD}, format="json"
    )

    assert blocked.status_code == 429
    assert from_elsewhere.status_code == 200


def test_a_successful_login_resets_the_username_counter(api_client, settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (2, 900), "ip": (100, 900)}
    membership = MembershipFactory()
    creds = {"username": membership.user.username, "password": "wrong-password-1"}
    api_client.post("/api/auth/login", creds, format="json")
    login(api_client, membership.user.username)

    api_client.post("/api/auth/login", creds, format="json")

    assert login(api_client, membership.user.username)["access"]


def test_anonymous_requests_are_401():
    response = APIClient().get("/api/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_token_not_yet_valid_is_401_though_our_key_signed_it(api_client):
    """`nbf` in the future (a token minted ahead, or a clock far off): refused until then."""
    import time

    membership = MembershipFactory()
    tokens = login(api_client, membership.user.username)
    payload = jwt.decode(tokens["access"], settings.JWT_SECRET, algorithms=["HS256"])
    early = jwt.encode({**payload, "nbf": int(time.time()) + 3600}, settings.JWT_SECRET, algorithm="HS256")
    on_time = jwt.encode({**payload, "nbf": int(time.time()) - 60}, settings.JWT_SECRET, algorithm="HS256")

    assert bearer(APIClient(), early).get("/api/auth/me").status_code == 401
    assert bearer(APIClient(), on_time).get("/api/auth/me").status_code == 200
