"""Google: authorization code with PKCE (Google's documented endpoints over httpx), then google-auth's
credentials (refresh) and google-api-python-client's Calendar v3 (freebusy, events).

The client library reaches the Calendar API at GOOGLE_API_URL (its `api_endpoint` option) and
google-auth refreshes at GOOGLE_OAUTH2_URL (the credentials' `token_uri`), so a stand-in can answer both.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import google_auth_httplib2
import httplib2
import httpx
from django.conf import settings
from google.auth import jwt
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from apps.calendar.errors import CalendarUnavailable, EventConflict, ReconnectNeeded
from apps.calendar.providers import Grant, NewEvent
from chatbot.exceptions import ValidationFailed

# The least that booking needs: free/busy times and its own events; openid + email name the account.
SCOPES = (
    "openid",
    "email",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
)


def _token_uri() -> str:
    return f"{settings.GOOGLE_OAUTH2_URL}/token"


def _configured() -> None:
    if not settings.GOOGLE_OAUTH_CLIENT_ID or not settings.GOOGLE_OAUTH_CLIENT_SECRET:
        raise ValidationFailed(
            "Google Calendar is not configured (GOOGLE_OAUTH_CLIENT_ID and GOOGLE_OAUTH_CLIENT_SECRET).",
            code="calendar_not_configured",
        )


def authorization_start(*, redirect_uri: str, state: str) -> tuple[str, str]:
    """(the URL to send the staff member to, the PKCE verifier to keep secret until the callback)."""
    _configured()
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": settings.GOOGLE_OAUTH_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",  # a refresh token
        "prompt": "consent",  # a refresh token again on a reconnect
        "include_granted_scopes": "true",
    }
    return f"{settings.GOOGLE_ACCOUNTS_URL}/o/oauth2/v2/auth?{urlencode(query)}", verifier


def authorization_finish(*, secret: str, redirect_uri: str, params: dict[str, str]) -> Grant:
    _configured()
    try:
        response = httpx.post(
            _token_uri(),
            data={
                "grant_type": "authorization_code",
                "code": params.get("code", ""),
                "code_verifier": secret,
                "redirect_uri": redirect_uri,
                "client_id": settings.GOOGLE_OAUTH_CLIENT_ID,
                "client_secret": settings.GOOGLE_OAUTH_CLIENT_SECRET,
            },
            timeout=settings.CALENDAR_HTTP_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise CalendarUnavailable("Google's token endpoint cannot be reached.") from exc
    body = _json(response)
    if response.status_code >= 500:
        raise CalendarUnavailable(f"Google's token endpoint answered {response.status_code}.")
    if response.status_code != 200 or "access_token" not in body:
        raise ValidationFailed(
            f"Google refused the authorization: {body.get('error', response.status_code)}.",
            code="calendar_authorization_refused",
        )
    if not body.get("refresh_token"):
        raise ValidationFailed(
            "Google gave no refresh token; connect again.", code="calendar_authorization_refused"
        )
    # Straight from the token endpoint over TLS: OpenID Connect lets the client skip the signature check.
    claims: dict[str, Any] = {}
    if body.get("id_token"):
        claims = jwt.decode(body["id_token"], verify=False)  # type: ignore[no-untyped-call]
    email = str(claims.get("email") or "")
    if not email:
        raise ValidationFailed(
            "Google did not say which account was connected.", code="calendar_authorization_refused"
        )
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(body.get("expires_in", 3600)))
    token = {
        "token": body["access_token"],
        "refresh_token": body["refresh_token"],
        "expiry": expiry.isoformat(),
        "scopes": str(body.get("scope", " ".join(SCOPES))).split(),
    }
    return Grant(account_email=email, token=json.dumps(token))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_id_for(idempotency_key: str) -> str:
    """Google's event ids are 5-1024 base32hex characters (a-v, 0-9): a hex digest is one."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


class GoogleCalendar:
    def __init__(self, *, token: str, calendar_id: str) -> None:
        self.token = token
        self.calendar_id = calendar_id
        stored = json.loads(token) if token else {}
        expiry = stored.get("expiry")
        self._credentials = Credentials(  # type: ignore[no-untyped-call]
            token=stored.get("token"),
            refresh_token=stored.get("refresh_token"),
            token_uri=_token_uri(),
            client_id=settings.GOOGLE_OAUTH_CLIENT_ID,
            client_secret=settings.GOOGLE_OAUTH_CLIENT_SECRET,
            scopes=stored.get("scopes"),
            # google-auth compares expiry with a naive UTC datetime.
            expiry=dt.datetime.fromisoformat(expiry).astimezone(dt.UTC).replace(tzinfo=None)
            if expiry
            else None,
        )
        http = google_auth_httplib2.AuthorizedHttp(
            self._credentials, http=httplib2.Http(timeout=settings.CALENDAR_HTTP_TIMEOUT)
        )
        self._service = build(
            "calendar",
            "v3",
            http=http,
            client_options={"api_endpoint": f"{settings.GOOGLE_API_URL}/calendar/v3/"},
            cache_discovery=False,
            static_discovery=True,
        )

    def _call(self, request: Any) -> Any:
        try:
            return request.execute(num_retries=0)
        except RefreshError as exc:
            if "invalid_grant" in str(exc):
                raise ReconnectNeeded("Google refused the stored grant (invalid_grant).") from exc
            raise CalendarUnavailable("Google's token refresh failed.") from exc
        except HttpError as exc:
            if exc.resp.status == 401:
                raise ReconnectNeeded("Google refused the access token.") from exc
            if exc.resp.status == 409:
                raise EventConflict("Google Calendar answered 409.") from exc
            raise CalendarUnavailable(f"Google Calendar answered {exc.resp.status}.") from exc
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise CalendarUnavailable("Google Calendar cannot be reached.") from exc
        finally:
            self._keep_token()

    def _keep_token(self) -> None:
        stored = json.loads(self.token) if self.token else {}
        if self._credentials.token and self._credentials.token != stored.get("token"):
            expiry = self._credentials.expiry
            stored["token"] = self._credentials.token
            stored["expiry"] = expiry.replace(tzinfo=dt.UTC).isoformat() if expiry else None
            self.token = json.dumps(stored)

    def busy(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        body = {"timeMin": _rfc3339(start), "timeMax": _rfc3339(end), "items": [{"id": self.calendar_id}]}
        answer = self._call(self._service.freebusy().query(body=body))
        calendar = (answer.get("calendars") or {}).get(self.calendar_id) or {}
        if calendar.get("errors"):
            raise CalendarUnavailable(f"Google free/busy: {calendar['errors'][0].get('reason', 'error')}.")
        return [
            (
                dt.datetime.fromisoformat(b["start"].replace("Z", "+00:00")),
                dt.datetime.fromisoformat(b["end"].replace("Z", "+00:00")),
            )
            for b in calendar.get("busy", [])
        ]

    def event_create(self, event: NewEvent) -> str:
        event_id = event_id_for(event.idempotency_key)
        body = {
            "id": event_id,
            "summary": event.summary,
            "description": event.description,
            "start": {"dateTime": _rfc3339(event.start), "timeZone": "UTC"},
            "end": {"dateTime": _rfc3339(event.end), "timeZone": "UTC"},
        }
        try:
            created = self._call(self._service.events().insert(calendarId=self.calendar_id, body=body))
        except EventConflict:
            # Our id exists already: a retry after a lost answer; the event is ours. Anything else is a conflict.
            try:
                existing = self._call(
                    self._service.events().get(calendarId=self.calendar_id, eventId=event_id)
                )
            except CalendarUnavailable:
                raise EventConflict("Google Calendar refused the event (409).") from None
            if existing.get("status") == "cancelled":
                raise EventConflict("The event was deleted at Google.") from None
            return str(existing["id"])
        return str(created["id"])

    def event_delete(self, event_id: str) -> None:
        try:
            self._call(self._service.events().delete(calendarId=self.calendar_id, eventId=event_id))
        except CalendarUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, HttpError) and cause.resp.status in (404, 410):
                return  # gone already: what we wanted
            raise

    def revoke(self) -> None:
        stored = json.loads(self.token) if self.token else {}
        token = stored.get("refresh_token") or stored.get("token")
        if not token:
            return
        try:
            httpx.post(
                f"{settings.GOOGLE_OAUTH2_URL}/revoke",
                params={"token": token},
                timeout=settings.CALENDAR_HTTP_TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise CalendarUnavailable("Google's revoke endpoint cannot be reached.") from exc
