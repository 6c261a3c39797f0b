"""A local stand-in for Microsoft's identity platform (v2.0 endpoints) and Microsoft Graph's calendar.

It serves HTTPS with its own certificate (`ca_file`), since msal accepts only https authorities; point
MICROSOFT_AUTHORITY_URL and MICROSOFT_GRAPH_URL at `url` and MICROSOFT_CA_BUNDLE at `ca_file`.
- `GET /{tenant}/v2.0/.well-known/openid-configuration` (msal's tenant discovery),
  `GET /{tenant}/oauth2/v2.0/authorize` (approves at once, PKCE S256 required),
  `POST /{tenant}/oauth2/v2.0/token` (authorization_code, refresh_token; `invalid_grant` AADSTS70000 once
  revoked), with `client_info` and an ID token as msal expects;
- Graph: `GET /v1.0/me`, `GET /v1.0/me/calendarView`, `POST /v1.0/me/events` (a repeated `transactionId`
  returns the event made the first time), `DELETE /v1.0/me/events/{id}`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from typing import Any

from standins.oauth_server import Answer, OAuthStandIn, Recorded, unsigned_jwt

TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # Microsoft's tenant of personal accounts


def graph_error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


def _parse(value: str) -> dt.datetime:
    """Graph's dateTime (no offset, in the given timeZone: the stand-in speaks UTC only)."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _graph_time(value: dt.datetime) -> dict[str, str]:
    return {"dateTime": value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


class MicrosoftStandIn(OAuthStandIn):
    name = "microsoft"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("tls", True)
        super().__init__(**kwargs)
        self.client_id = "00000000-0000-0000-0000-0000standin"
        self.events_by_id: dict[str, dict[str, Any]] = {}
        self.busy: list[tuple[dt.datetime, dt.datetime]] = []

    def add_busy(self, start: dt.datetime, end: dt.datetime) -> None:
        with self.lock:
            self.busy.append((start, end))

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events_by_id.values() if not e.get("_deleted")]

    # --- OAuth ---------------------------------------------------------------------------
    def _uid(self, account: str) -> str:
        return f"00000000-0000-0000-{abs(hash(account)) % 10**12:012d}"[:36]

    def token_response(
        self, refresh: str, scope: str, account: str, nonce: str, *, refreshed: bool = False
    ) -> dict[str, Any]:
        now = int(time.time())
        uid = self._uid(account)
        client_info = base64.urlsafe_b64encode(json.dumps({"uid": uid, "utid": TENANT_ID}).encode())
        claims: dict[str, Any] = {
            "iss": f"{self.url}/{TENANT_ID}/v2.0",
            "aud": self.client_id,
            "sub": uid,
            "oid": uid,
            "tid": TENANT_ID,
            "preferred_username": account,
            "name": account.split("@")[0],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scope.split() if s not in ("openid", "profile", "offline_access")),
            "expires_in": self.access_ttl,
            "ext_expires_in": self.access_ttl,
            "access_token": self.new_access_token(refresh),
            "refresh_token": refresh,
            "id_token": unsigned_jwt(claims),
            "client_info": client_info.rstrip(b"=").decode(),
        }

    def invalid_grant(self, description: str) -> Answer:
        return Answer(
            400,
            {
                "error": "invalid_grant",
                "error_description": f"AADSTS70000: {description}",
                "error_codes": [70000],
                "suberror": "bad_token",
            },
        )

    def _openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {
            "issuer": f"{self.url}/{TENANT_ID if tenant in ('common', 'consumers') else tenant}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    # --- routes --------------------------------------------------------------------------
    def route(self, method: str, path: str, request: Recorded) -> Answer:
        parts = path.strip("/").split("/")
        if path.endswith("/v2.0/.well-known/openid-configuration") and method == "GET":
            return Answer(200, self._openid_configuration(parts[0]))
        if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"]:
            if parts[3] == "authorize" and method == "GET":
                return self.authorize(request.query)
            if parts[3] == "token" and method == "POST":
                return self.token(request.body or {})
        if not path.startswith("/v1.0/"):
            return graph_error(404, "NotFound", "Resource not found")
        account = self.bearer_account(request.headers)
        if account is None:
            return graph_error(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        if method == "GET" and path == "/v1.0/me":
            return Answer(200, {"id": self._uid(account), "mail": account, "userPrincipalName": account})
        if method == "GET" and path == "/v1.0/me/calendarView":
            return self._calendar_view(request.query)
        if method == "POST" and path == "/v1.0/me/events":
            return self._create(request.body or {})
        if method == "DELETE" and path.startswith("/v1.0/me/events/"):
            return self._delete(path.rsplit("/", 1)[1])
        return graph_error(404, "NotFound", "Resource not found")

    def _calendar_view(self, query: dict[str, str]) -> Answer:
        low, high = _parse(query["startDateTime"]), _parse(query["endDateTime"])
        with self.lock:
            items = [
                {
                    "id": f"busy-{i}",
                    "subject": "Busy",
                    "showAs": "busy",
                    "start": _graph_time(s),
                    "end": _graph_time(e),
                }
                for i, (s, e) in enumerate(self.busy)
                if s < high and e > low
            ]
            for event in self.events_by_id.values():
                if (
                    not event.get("_deleted")
                    and _parse(event["start"]["dateTime"]) < high
                    and _parse(event["end"]["dateTime"]) > low
                ):
                    items.append({k: v for k, v in event.items() if not k.startswith("_")})
        return Answer(200, {"@odata.context": "standin", "value": items})

    def _create(self, body: dict[str, Any]) -> Answer:
        start, end = _parse(body["start"]["dateTime"]), _parse(body["end"]["dateTime"])
        transaction = body.get("transactionId")
        with self.lock:
            if transaction:
                for event in self.events_by_id.values():
                    if event.get("transactionId") == transaction:
                        return Answer(201, {k: v for k, v in event.items() if not k.startswith("_")})
            event = {
                "id": "AAMk" + secrets.token_urlsafe(24),
                "subject": body.get("subject", ""),
                "body": body.get("body", {}),
                "start": _graph_time(start),
                "end": _graph_time(end),
                "showAs": "busy",
                "transactionId": transaction,
            }
            self.events_by_id[event["id"]] = event
        return Answer(201, dict(event))

    def _delete(self, event_id: str) -> Answer:
        with self.lock:
            event = self.events_by_id.get(event_id)
            if event is None or event.get("_deleted"):
                return graph_error(
                    404, "ErrorItemNotFound", "The specified object was not found in the store."
                )
            event["_deleted"] = True
        return Answer(204)
