"""Connecting calendars through the real client libraries (google-auth, google-api-python-client, msal)
against the stand-ins: PKCE, the state bound to the staff session, refresh, invalid_grant, disconnect."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as db

from apps.alerts.models import CALENDAR_RECONNECT, Alert
from apps.calendar import services
from apps.calendar.errors import ReconnectNeeded
from apps.calendar.models import Connection, PendingAuthorization
from apps.calendar.tests.conftest import approve, connect
from chatbot.exceptions import Forbidden, ValidationFailed

REDIRECT = "https://app.example/calendar/callback"
T0 = dt.datetime(2030, 3, 4, 9, 0, tzinfo=dt.UTC)


def _raw_token(pk):
    with db.cursor() as cursor:
        cursor.execute("SELECT token FROM calendar_connection WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_google_connect_uses_pkce_and_stores_the_grant_encrypted(staff, google_standin):
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", provider="google", redirect_uri=REDIRECT
    )
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{google_standin.url}/o/oauth2/v2/auth?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["offline"]
    assert set(query["scope"][0].split()) == {
        "openid",
        "email",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.freebusy",
    }

    conn = services.connection_connect_finish(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", params=approve(url)
    )

    assert conn.provider == "google"
    assert conn.account_email == "owner@example.com"
    assert conn.status == Connection.Status.CONNECTED
    refresh = google_standin.live_grants()
    assert len(refresh) == 1
    stored_refresh = next(iter(google_standin.grants))
    assert stored_refresh in Connection.objects.get(pk=conn.pk).token
    assert stored_refresh not in _raw_token(conn.pk)  # encrypted at rest
    assert not PendingAuthorization.objects.exists()  # the state is used once


@pytest.mark.parametrize(
    ("session", "same_user"), [("another-session", True), ("s1", False)], ids=["other session", "other user"]
)
def test_the_state_is_bound_to_the_staff_session(staff, google_standin, session, same_user):
    from apps.accounts.tests.factories import UserFactory

    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", provider="google", redirect_uri=REDIRECT
    )
    other = user if same_user else UserFactory()

    with pytest.raises(Forbidden):
        services.connection_connect_finish(
            workspace_id=workspace.pk, user_id=other.pk, session_key=session, params=approve(url)
        )
    assert not Connection.objects.exists()
    assert not google_standin.grants  # the code was never exchanged


def test_a_replayed_or_unknown_state_is_refused(staff, google_standin):
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", provider="google", redirect_uri=REDIRECT
    )
    params = approve(url)
    services.connection_connect_finish(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", params=params
    )

    with pytest.raises(Forbidden):
        services.connection_connect_finish(
            workspace_id=workspace.pk, user_id=user.pk, session_key="s1", params=params
        )
    with pytest.raises(Forbidden):
        services.connection_connect_finish(
            workspace_id=workspace.pk,
            user_id=user.pk,
            session_key="s1",
            params={"code": "x", "state": "nope"},
        )
    assert Connection.objects.count() == 1


def test_a_denied_consent_connects_nothing(staff, google_standin):
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk, user_id=user.pk, session_key="s1", provider="google", redirect_uri=REDIRECT
    )
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(ValidationFailed, match="access_denied"):
        services.connection_connect_finish(
            workspace_id=workspace.pk,
            user_id=user.pk,
            session_key="s1",
            params={"error": "access_denied", "state": state},
        )
    assert not Connection.objects.exists()


def test_an_unconfigured_provider_says_so(staff, settings):
    workspace, user = staff
    settings.GOOGLE_OAUTH_CLIENT_ID = ""
    with pytest.raises(ValidationFailed) as caught:
        services.connection_connect_start(
            workspace_id=workspace.pk,
            user_id=user.pk,
            session_key="s1",
            provider="google",
            redirect_uri=REDIRECT,
        )
    assert caught.value.code == "calendar_not_configured"


def test_google_refreshes_an_expired_access_token_and_keeps_the_new_one(staff, google_standin):
    conn = connect(staff, "google")
    google_standin.add_busy(T0, T0 + dt.timedelta(hours=1))
    before = Connection.objects.get(pk=conn.pk).token
    google_standin.expire_access_tokens()

    busy = services.connection_busy(
        connection=conn, start=T0 - dt.timedelta(hours=2), end=T0 + dt.timedelta(hours=4)
    )

    assert [(t.start, t.end) for t in busy] == [(T0, T0 + dt.timedelta(hours=1))]
    after = Connection.objects.get(pk=conn.pk).token
    assert after != before  # the refreshed access token was stored
    assert [r.body["grant_type"] for r in google_standin.requests if r.path == "/token"] == [
        "authorization_code",
        "refresh_token",
    ]


def test_google_invalid_grant_marks_reconnect_needed_and_alerts_staff_once(staff, google_standin):
    conn = connect(staff, "google")
    google_standin.revoke_grants()

    for _ in range(2):
        with pytest.raises(ReconnectNeeded):
            services.connection_busy(connection=conn, start=T0, end=T0 + dt.timedelta(hours=1))

    conn.refresh_from_db()
    assert conn.status == Connection.Status.RECONNECT_NEEDED
    alerts = Alert.objects.filter(workspace=conn.workspace, kind=CALENDAR_RECONNECT)
    assert alerts.count() == 1
    assert "owner@example.com" in alerts.get().summary


def test_google_disconnect_revokes_the_grant(staff, google_standin):
    conn = connect(staff, "google")

    services.connection_disconnect(connection=conn, actor_id=None)

    conn.refresh_from_db()
    assert conn.status == Connection.Status.DISCONNECTED
    assert conn.token == ""
    assert google_standin.live_grants() == []


def test_reconnecting_the_same_account_updates_the_connection(staff, google_standin):
    first = connect(staff, "google")
    google_standin.revoke_grants()
    services.connection_mark_reconnect_needed(connection=first, reason="invalid_grant")

    second = connect(staff, "google")

    assert second.pk == first.pk
    assert second.status == Connection.Status.CONNECTED
    assert len(google_standin.live_grants()) == 1


def test_microsoft_connect_through_msal(staff, microsoft_standin):
    conn = connect(staff, "microsoft", microsoft_standin.ca_file)

    assert conn.provider == "microsoft"
    assert conn.account_email == "owner@example.com"
    assert conn.account_key.endswith(".9188040d-6c67-4c5b-b112-36a304b66dad")
    authorize = next(r for r in microsoft_standin.requests if r.path.endswith("/authorize"))
    # msal adds the reserved scopes itself and PKCE; only Graph's scope is asked for besides.
    assert set(authorize.query["scope"].split()) == {
        "Calendars.ReadWrite",
        "openid",
        "profile",
        "offline_access",
    }
    assert authorize.query["code_challenge_method"] == "S256"
    assert next(iter(microsoft_standin.grants)) not in _raw_token(conn.pk)


def test_microsoft_refresh_and_invalid_grant(staff, microsoft_standin):
    conn = connect(staff, "microsoft", microsoft_standin.ca_file)
    microsoft_standin.add_busy(T0, T0 + dt.timedelta(minutes=45))
    microsoft_standin.expire_access_tokens()
    # msal trusts its cache's expiry: make the cached access token look expired too.
    import json

    cache = json.loads(Connection.objects.get(pk=conn.pk).token)
    for item in cache["AccessToken"].values():
        item["expires_on"] = item["extended_expires_on"] = "0"
    Connection.objects.filter(pk=conn.pk).update(token=json.dumps(cache))
    conn.refresh_from_db()

    busy = services.connection_busy(
        connection=conn, start=T0 - dt.timedelta(hours=1), end=T0 + dt.timedelta(hours=2)
    )
    assert [(t.start, t.end) for t in busy] == [(T0, T0 + dt.timedelta(minutes=45))]
    grants = [r.body["grant_type"] for r in microsoft_standin.requests if r.path.endswith("/token")]
    assert grants == ["authorization_code", "refresh_token"]

    microsoft_standin.revoke_grants()
    cache = json.loads(Connection.objects.get(pk=conn.pk).token)
    for item in cache["AccessToken"].values():
        item["expires_on"] = item["extended_expires_on"] = "0"
    Connection.objects.filter(pk=conn.pk).update(token=json.dumps(cache))
    conn.refresh_from_db()
    with pytest.raises(ReconnectNeeded):
        services.connection_busy(connection=conn, start=T0, end=T0 + dt.timedelta(hours=1))
    conn.refresh_from_db()
    assert conn.status == Connection.Status.RECONNECT_NEEDED
    assert Alert.objects.filter(kind=CALENDAR_RECONNECT, workspace=conn.workspace).count() == 1
