"""Microsoft: msal's auth code flow (PKCE and nonce inside msal) and token cache, Microsoft Graph over httpx.

msal accepts only https authorities and validates them; MICROSOFT_AUTHORITY_URL with instance discovery
off lets it trust a stand-in, whose certificate MICROSOFT_CA_BUNDLE names. msal adds the reserved scopes
(openid, profile, offline_access) itself: passing them raises ValueError, so SCOPES holds only Graph's.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
from typing import Any

import httpx
import msal
import requests
from django.conf import settings

from apps.calendar.errors import CalendarUnavailable, EventConflict, ReconnectNeeded
from apps.calendar.providers import Grant, NewEvent
from chatbot.exceptions import ValidationFailed

SCOPES = ["Calendars.ReadWrite"]  # calendarView and the app's own events; personal accounts too


def _verify() -> ssl.SSLContext | bool:
    if settings.MICROSOFT_CA_BUNDLE:
        return ssl.create_default_context(cafile=settings.MICROSOFT_CA_BUNDLE)
    return True


def _http_client() -> requests.Session:
    session = requests.Session()
    if settings.MICROSOFT_CA_BUNDLE:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a session's
        # own `verify`; a private CA given in the settings must win, so the environment is not read.
        session.trust_env = False
        session.verify = settings.MICROSOFT_CA_BUNDLE
    return session


def _configured() -> None:
    if not settings.MICROSOFT_CLIENT_ID or not settings.MICROSOFT_CLIENT_SECRET:
        raise ValidationFailed(
            "Outlook is not configured (MICROSOFT_CLIENT_ID and MICROSOFT_CLIENT_SECRET).",
            code="calendar_not_configured",
        )


def _app(cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
    _configured()
    try:
        return msal.ConfidentialClientApplication(
            settings.MICROSOFT_CLIENT_ID,
            client_credential=settings.MICROSOFT_CLIENT_SECRET,
            authority=f"{settings.MICROSOFT_AUTHORITY_URL}/{settings.MICROSOFT_TENANT}",
            instance_discovery=False,
            token_cache=cache,
            http_client=_http_client(),
            timeout=settings.CALENDAR_HTTP_TIMEOUT,
        )
    except ValueError as exc:  # msal's word for "the authority's discovery failed"
        raise CalendarUnavailable(f"Microsoft's identity platform cannot be used: {exc}") from exc
    except OSError as exc:
        raise CalendarUnavailable("Microsoft's identity platform cannot be reached.") from exc


def authorization_start(*, redirect_uri: str, state: str) -> tuple[str, str]:
    """(the URL to send the staff member to, msal's flow as JSON, secret until the callback)."""
    flow = _app().initiate_auth_code_flow(
        SCOPES, redirect_uri=redirect_uri, state=state, prompt="select_account"
    )
    return str(flow["auth_uri"]), json.dumps(flow)


def authorization_finish(*, secret: str, redirect_uri: str, params: dict[str, str]) -> Grant:
    cache = msal.SerializableTokenCache()
    app = _app(cache)
    try:
        result = app.acquire_token_by_auth_code_flow(json.loads(secret), params, scopes=SCOPES)
    except ValueError as exc:  # msal: the state or the flow does not match
        raise ValidationFailed(
            f"The authorization does not match: {exc}", code="calendar_authorization_refused"
        ) from exc
    except OSError as exc:
        raise CalendarUnavailable("Microsoft's token endpoint cannot be reached.") from exc
    if "access_token" not in result:
        raise ValidationFailed(
            f"Microsoft refused the authorization: {result.get('error', 'unknown')}.",
            code="calendar_authorization_refused",
        )
    claims = result.get("id_token_claims") or {}
    email = str(claims.get("preferred_username") or claims.get("email") or "")
    accounts = app.get_accounts()
    if not email or not accounts:
        raise ValidationFailed(
            "Microsoft did not say which account was connected.", code="calendar_authorization_refused"
        )
    return Grant(
        account_email=email, token=cache.serialize(), account_key=str(accounts[0]["home_account_id"])
    )


def _graph_time(value: dt.datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _parse_graph(value: dict[str, str]) -> dt.datetime:
    # Asked for UTC (Prefer: outlook.timezone="UTC"): Graph gives a naive UTC dateTime with 7 decimals.
    text = value["dateTime"].rstrip("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class OutlookCalendar:
    def __init__(self, *, token: str, account_key: str, calendar_id: str) -> None:
        self.token = token
        self.account_key = account_key
        # "primary" is the account's default calendar (/me/calendar); any other id names one of its calendars.
        self._base = "/v1.0/me" if calendar_id in ("", "primary") else f"/v1.0/me/calendars/{calendar_id}"
        self._cache = msal.SerializableTokenCache()
        if token:
            self._cache.deserialize(token)

    def _access_token(self) -> str:
        app = _app(self._cache)
        accounts = [a for a in app.get_accounts() if a.get("home_account_id") == self.account_key]
        if not accounts:
            raise ReconnectNeeded("No Microsoft account in the stored token cache.")
        try:
            result = app.acquire_token_silent_with_error(SCOPES, account=accounts[0])
        except OSError as exc:
            raise CalendarUnavailable("Microsoft's token endpoint cannot be reached.") from exc
        finally:
            if self._cache.has_state_changed:
                self.token = self._cache.serialize()
        if not result or "access_token" not in result:
            error = (result or {}).get("error", "no_token")
            if error in ("invalid_grant", "interaction_required", "no_token"):
                raise ReconnectNeeded(f"Microsoft refused the stored grant ({error}).")
            raise CalendarUnavailable(f"Microsoft's token endpoint answered {error}.")
        return str(result["access_token"])

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}", "Prefer": 'outlook.timezone="UTC"'}
        url = path if path.startswith("http") else f"{settings.MICROSOFT_GRAPH_URL}{path}"
        try:
            with httpx.Client(verify=_verify(), timeout=settings.CALENDAR_HTTP_TIMEOUT) as client:
                response = client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise CalendarUnavailable("Microsoft Graph cannot be reached.") from exc
        if response.status_code == 401:
            raise ReconnectNeeded("Microsoft Graph refused the access token.")
        if response.status_code == 409:
            raise EventConflict("Microsoft Graph answered 409.")
        if response.status_code >= 500 or response.status_code == 429:
            raise CalendarUnavailable(f"Microsoft Graph answered {response.status_code}.")
        return response

    def busy(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        params: dict[str, str] | None = {
            "startDateTime": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "$select": "start,end,showAs",
            "$top": "200",
        }
        url = f"{self._base}/calendarView"
        spans: list[tuple[dt.datetime, dt.datetime]] = []
        for _page in range(50):  # a bound on paging: 10,000 events in one window is not a calendar
            response = self._request("GET", url, params=params)
            if response.status_code != 200:
                raise CalendarUnavailable(f"Microsoft Graph calendarView answered {response.status_code}.")
            body = response.json()
            for item in body.get("value", []):
                if item.get("showAs") != "free":
                    spans.append((_parse_graph(item["start"]), _parse_graph(item["end"])))
            url, params = body.get("@odata.nextLink", ""), None
            if not url:
                break
        return spans

    def event_create(self, event: NewEvent) -> str:
        body = {
            "subject": event.summary,
            "body": {"contentType": "text", "content": event.description},
            "start": _graph_time(event.start),
            "end": _graph_time(event.end),
            # Graph returns the first event again for a repeated transactionId (a retried POST).
            "transactionId": event.idempotency_key,
        }
        response = self._request("POST", f"{self._base}/events", json=body)
        if response.status_code not in (200, 201):
            raise CalendarUnavailable(f"Microsoft Graph answered {response.status_code} to the new event.")
        return str(response.json()["id"])

    def event_delete(self, event_id: str) -> None:
        response = self._request("DELETE", f"/v1.0/me/events/{event_id}")
        if response.status_code not in (204, 404):
            raise CalendarUnavailable(f"Microsoft Graph answered {response.status_code} to the delete.")

    def revoke(self) -> None:
        # Microsoft has no endpoint to revoke one app's grant: disconnecting forgets the tokens (the
        # person removes the app at account.microsoft.com / myapps.microsoft.com to revoke consent).
        return


__all__ = ["SCOPES", "EventConflict", "OutlookCalendar", "authorization_finish", "authorization_start"]
