"""What the booking services need from a calendar provider, and the client for a connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from apps.calendar.models import Connection


@dataclass(frozen=True)
class Grant:
    """What a finished authorization gives: whose calendar, and the credentials to store (encrypted)."""

    account_email: str
    token: str
    account_key: str = ""


@dataclass(frozen=True)
class NewEvent:
    start: dt.datetime  # aware, any zone
    end: dt.datetime
    summary: str
    description: str
    idempotency_key: str  # the same key always names the same event at the provider


class CalendarClient(Protocol):
    token: str  # the credentials after the calls (refreshed ones are to be stored)

    def busy(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]: ...

    def event_create(self, event: NewEvent) -> str: ...

    def event_delete(self, event_id: str) -> None: ...

    def revoke(self) -> None: ...


def client_for(connection: Connection) -> CalendarClient:
    from apps.calendar import google_calendar, outlook

    if connection.provider == "google":
        return google_calendar.GoogleCalendar(token=connection.token, calendar_id=connection.calendar_id)
    return outlook.OutlookCalendar(
        token=connection.token, account_key=connection.account_key, calendar_id=connection.calendar_id
    )
