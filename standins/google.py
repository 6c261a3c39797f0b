"""A local stand-in for Google's OAuth 2.0 endpoints and the Calendar API v3 (the parts bookings use).

Paths as Google's (one server stands for accounts.google.com, oauth2.googleapis.com and
www.googleapis.com, so GOOGLE_ACCOUNTS_URL, GOOGLE_OAUTH2_URL and GOOGLE_API_URL all point at `url`):
- `GET /o/oauth2/v2/auth` approves at once (PKCE S256 required) and redirects with `code` and `state`;
- `POST /token` (authorization_code with `code_verifier`, refresh_token; `invalid_grant` once revoked),
  `POST /revoke?token=...`;
- `POST /calendar/v3/freeBusy`, `POST|GET|DELETE /calendar/v3/calendars/{id}/events[/{eventId}]`:
  a client-supplied event id that exists already answers 409 `duplicate`, a deleted one 410.

Tests add busy times (`add_busy`), force a conflict (`conflict_next`), expire tokens, revoke grants and
cause outages (`outage`), and read the calendar (`events`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from typing import Any
from urllib.parse import unquote

from standins.oauth_server import Answer, OAuthStandIn, Recorded, unsigned_jwt

_EVENTS = re.compile(r"^/calendar/v3/calendars/(?P<calendar>[^/]+)/events(?:/(?P<event>[^/]+))?$")
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")  # Google's rule: base32hex characters


def google_error(status: int, reason: str, message: str) -> Answer:
    return Answer(
        status,
        {
            "error": {
                "errors": [{"domain": "global", "reason": reason, "message": message}],
                "code": status,
                "message": message,
            }
        },
    )


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class GoogleStandIn(OAuthStandIn):
    name = "google"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_id = "standin-client.apps.googleusercontent.com"
        # calendar id -> event id -> event; "primary" is the signed-in account's own calendar.
        self.calendars: dict[str, dict[str, dict[str, Any]]] = {}
        self.deleted: set[str] = set()
        self.busy: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        self._conflicts = 0

    # --- what tests do -------------------------------------------------------------------
    def add_busy(self, start: dt.datetime, end: dt.datetime, calendar: str = "primary") -> None:
        with self.lock:
            self.busy.setdefault(calendar, []).append((start, end))

    def conflict_next(self, times: int = 1) -> None:
        """The next event inserts answer 409, as when the id exists already."""
        with self.lock:
            self._conflicts += times

    def events(self, calendar: str = "primary") -> list[dict[str, Any]]:
        with self.lock:
            return list(self.calendars.get(calendar, {}).values())

    # --- OAuth ---------------------------------------------------------------------------
    def token_response(
        self, refresh: str, scope: str, account: str, nonce: str, *, refreshed: bool = False
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "access_token": self.new_access_token(refresh),
            "expires_in": self.access_ttl,
            "scope": scope,
            "token_type": "Bearer",
        }
        if not refreshed:
            answer["refresh_token"] = refresh
            if "email" in scope.split():
                now = int(time.time())
                answer["id_token"] = unsigned_jwt(
                    {
                        "iss": "https://accounts.google.com",
                        "aud": self.client_id,
                        "sub": str(abs(hash(account))),
                        "email": account,
                        "email_verified": True,
                        "iat": now,
                        "exp": now + 3600,
                    }
                )
        return answer

    def revoke(self, token: str) -> Answer:
        with self.lock:
            if token in self.grants:
                self.grants[token].revoked = True
                self.access_tokens = {a: v for a, v in self.access_tokens.items() if v[0] != token}
                return Answer(200, {})
            if token in self.access_tokens:
                refresh = self.access_tokens.pop(token)[0]
                if refresh in self.grants:
                    self.grants[refresh].revoked = True
                return Answer(200, {})
        return Answer(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})

    # --- routes --------------------------------------------------------------------------
    def route(self, method: str, path: str, request: Recorded) -> Answer:
        if method == "GET" and path == "/o/oauth2/v2/auth":
            return self.authorize(request.query)
        if method == "POST" and path == "/token":
            return self.token(request.body or {})
        if method == "POST" and path == "/revoke":
            return self.revoke(request.query.get("token") or (request.body or {}).get("token", ""))
        if not path.startswith("/calendar/v3/"):
            return google_error(404, "notFound", "Not Found")
        if self.bearer_account(request.headers) is None:
            return Answer(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
            )
        if method == "POST" and path == "/calendar/v3/freeBusy":
            return self._freebusy(request.body or {})
        match = _EVENTS.match(path)
        if match is None:
            return google_error(404, "notFound", "Not Found")
        calendar, event_id = unquote(match["calendar"]), match["event"]
        if method == "POST" and event_id is None:
            return self._insert(calendar, request.body or {})
        if event_id is not None and method in ("GET", "DELETE"):
            return self._event(method, calendar, event_id)
        return google_error(405, "methodNotAllowed", "Method not allowed")

    def _freebusy(self, body: dict[str, Any]) -> Answer:
        low, high = _parse(body["timeMin"]), _parse(body["timeMax"])
        calendars: dict[str, Any] = {}
        with self.lock:
            for item in body.get("items", []):
                cid = item["id"]
                spans = list(self.busy.get(cid, []))
                for event in self.calendars.get(cid, {}).values():
                    spans.append((_parse(event["start"]["dateTime"]), _parse(event["end"]["dateTime"])))
                busy = sorted((max(s, low), min(e, high)) for s, e in spans if s < high and e > low)
                calendars[cid] = {
                    "busy": [
                        {"start": s.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": e.strftime("%Y-%m-%dT%H:%M:%SZ")}
                        for s, e in busy
                    ]
                }
        return Answer(
            200,
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            },
        )

    def _insert(self, calendar: str, body: dict[str, Any]) -> Answer:
        event_id = body.get("id") or secrets.token_hex(13)
        if not _EVENT_ID.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        with self.lock:
            if self._conflicts > 0:
                self._conflicts -= 1
                return google_error(409, "duplicate", "The requested identifier already exists.")
            events = self.calendars.setdefault(calendar, {})
            if event_id in events or event_id in self.deleted:
                return google_error(409, "duplicate", "The requested identifier already exists.")
            event = {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "summary": body.get("summary", ""),
                "description": body.get("description", ""),
                "start": body["start"],
                "end": body["end"],
                "htmlLink": f"https://calendar.example/event?eid={event_id}",
            }
            _parse(event["start"]["dateTime"]), _parse(event["end"]["dateTime"])
            events[event_id] = event
        return Answer(200, event)

    def _event(self, method: str, calendar: str, event_id: str) -> Answer:
        with self.lock:
            events = self.calendars.get(calendar, {})
            if event_id in self.deleted:
                return google_error(410, "deleted", "Resource has been deleted")
            if event_id not in events:
                return google_error(404, "notFound", "Not Found")
            if method == "GET":
                return Answer(200, events[event_id])
            del events[event_id]
            self.deleted.add(event_id)
        return Answer(204)
