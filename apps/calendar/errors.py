"""The calendar's domain errors (turned into HTTP answers by chatbot.exceptions)."""

from __future__ import annotations

import datetime as dt

from chatbot.exceptions import Conflict, DomainError, TransientError


class ReconnectNeeded(DomainError):
    """The provider refused the grant (`invalid_grant`: revoked or expired): staff must connect again."""

    code = "calendar_reconnect_needed"
    status_code = 409


class CalendarUnavailable(TransientError):
    """The provider is down, slow or answered something unexpected; worth trying later."""

    code = "calendar_unavailable"


class EventConflict(Conflict):
    """The provider refused the event (409): the time or the id is taken there."""

    code = "calendar_conflict"


class SlotTaken(Conflict):
    """The slot is no longer free; `next_start` is the next free one (None when there is none)."""

    code = "slot_taken"

    def __init__(self, message: str = "", *, next_start: dt.datetime | None = None) -> None:
        super().__init__(
            message or "That time is no longer free.",
            details={"next_start": next_start.isoformat() if next_start else None},
        )
        self.next_start = next_start
