"""Free slots: opening hours in the business's time zone, minus busy times, existing bookings (with their
buffers), minimum notice, horizon and the daily cap. Pure computation over plain data; the selectors
feed it.

Opening hours are local wall-clock times ({"mon": [["09:00", "14:00"], ["16:00", "20:00"]], ...}): each
day is turned into UTC with that day's offset, so a 09:00 opening is 08:00 UTC in winter and 07:00 UTC in
summer in Madrid, and the days of the change have the right length.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from apps.calendar.models import SLOT_MINUTES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STEP_MINUTES = 15  # candidate starts: every quarter hour from each opening


@dataclass(frozen=True)
class Rules:
    duration: dt.timedelta
    buffer_before: dt.timedelta
    buffer_after: dt.timedelta
    min_notice: dt.timedelta
    horizon: dt.timedelta
    daily_cap: int | None


@dataclass(frozen=True)
class Taken:
    """A span nobody else may use: an event at the provider, or a booking with its buffers."""

    start: dt.datetime
    end: dt.datetime


def local_datetime(day: dt.date, clock: str, zone: ZoneInfo) -> dt.datetime | None:
    """The aware instant of a wall-clock time on a day; None when the clock skips it (spring forward)."""
    hours, minutes = (int(part) for part in clock.split(":"))
    if (hours, minutes) == (24, 0):
        day, hours = day + dt.timedelta(days=1), 0
    naive = dt.datetime.combine(day, dt.time(hours, minutes))
    aware = naive.replace(tzinfo=zone)
    # A time that does not exist does not survive the round trip through UTC.
    if aware.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != naive:
        return None
    return aware


def opening_spans(
    hours: dict[str, list[list[str]]], zone: ZoneInfo, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The opening hours between two instants, as UTC spans."""
    spans = []
    day = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for opens, closes in hours.get(DAYS[day.weekday()], []):
            low, high = local_datetime(day, opens, zone), local_datetime(day, closes, zone)
            if low is None or high is None or high <= low:
                continue
            low, high = max(low.astimezone(dt.UTC), start), min(high.astimezone(dt.UTC), end)
            if low < high:
                spans.append((low, high))
        day += dt.timedelta(days=1)
    return spans


def _aligned(value: dt.datetime) -> dt.datetime:
    """Up to the next SLOT_MINUTES boundary (UTC)."""
    value = value.astimezone(dt.UTC).replace(second=0, microsecond=0)
    extra = value.minute % SLOT_MINUTES
    return value + dt.timedelta(minutes=SLOT_MINUTES - extra) if extra else value


def free_slots(
    *,
    rules: Rules,
    hours: dict[str, list[list[str]]],
    zone: ZoneInfo,
    now: dt.datetime,
    window_start: dt.datetime,
    window_end: dt.datetime,
    taken: Iterable[Taken],
    booked_starts: Iterable[dt.datetime] = (),
    limit: int | None = None,
) -> list[dt.datetime]:
    """Starts (UTC) where the service fits: inside opening hours, its buffered span clear of `taken`.

    `booked_starts` are the service's own active bookings, counted per local day against the cap.
    """
    earliest = max(window_start, now + rules.min_notice)
    latest = min(window_end, now + rules.horizon)
    if earliest >= latest:
        return []
    blocked = sorted((t.start, t.end) for t in taken)
    per_day = Counter(start.astimezone(zone).date() for start in booked_starts)
    found: list[dt.datetime] = []
    for low, high in opening_spans(hours, zone, earliest - dt.timedelta(days=1), latest + rules.duration):
        # Candidates step from the opening itself, so "09:00" offers 09:00, 09:15, ... in local time.
        candidate = low
        if candidate < earliest:
            steps = -(-(earliest - candidate) // dt.timedelta(minutes=STEP_MINUTES))
            candidate += steps * dt.timedelta(minutes=STEP_MINUTES)
        candidate = _aligned(candidate)
        while candidate + rules.duration <= high and candidate < latest:
            span_low, span_high = (
                candidate - rules.buffer_before,
                candidate + rules.duration + rules.buffer_after,
            )
            clash = next((b for b in blocked if b[0] < span_high and b[1] > span_low), None)
            day = candidate.astimezone(zone).date()
            if clash is not None:
                # Jump past the clash, to the next step after its end.
                after = clash[1] + rules.buffer_before
                steps = max(1, -(-(after - candidate) // dt.timedelta(minutes=STEP_MINUTES)))
                candidate += steps * dt.timedelta(minutes=STEP_MINUTES)
                continue
            if rules.daily_cap is None or per_day[day] < rules.daily_cap:
                found.append(candidate)
                if limit is not None and len(found) >= limit:
                    return found
            candidate += dt.timedelta(minutes=STEP_MINUTES)
    return sorted(set(found))[:limit] if limit is not None else sorted(set(found))


def slot_fits(
    *,
    rules: Rules,
    hours: dict[str, list[list[str]]],
    zone: ZoneInfo,
    now: dt.datetime,
    start: dt.datetime,
    taken: Iterable[Taken],
    booked_starts: Iterable[dt.datetime] = (),
) -> bool:
    """Whether a given start is bookable (it need not be on the quarter-hour grid, only on the 5-minute one)."""
    end = start + rules.duration
    if start < now + rules.min_notice or start >= now + rules.horizon:
        return False
    if not any(low <= start and end <= high for low, high in opening_spans(hours, zone, start, end)):
        return False
    span_low, span_high = start - rules.buffer_before, end + rules.buffer_after
    if any(t.start < span_high and t.end > span_low for t in taken):
        return False
    day = start.astimezone(zone).date()
    count = sum(1 for s in booked_starts if s.astimezone(zone).date() == day)
    return rules.daily_cap is None or count < rules.daily_cap
