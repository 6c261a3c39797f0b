"""Slot computation: opening hours in the business's zone (DST-correct), buffers, notice, horizon, cap."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apps.calendar.availability import Rules, Taken, free_slots, local_datetime, slot_fits

MADRID = ZoneInfo("Europe/Madrid")
UTC = dt.UTC
EVERY_DAY = {d: [["09:00", "10:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def rules(minutes=60, before=0, after=0, notice=0, horizon=400, cap=None):
    return Rules(
        duration=dt.timedelta(minutes=minutes),
        buffer_before=dt.timedelta(minutes=before),
        buffer_after=dt.timedelta(minutes=after),
        min_notice=dt.timedelta(minutes=notice),
        horizon=dt.timedelta(days=horizon),
        daily_cap=cap,
    )


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_nine_o_clock_follows_madrid_across_the_spring_change():
    slots = free_slots(
        rules=rules(),
        hours=EVERY_DAY,
        zone=MADRID,
        now=at(2026, 3, 1),
        window_start=at(2026, 3, 28),
        window_end=at(2026, 3, 31),
        taken=[],
    )
    # 09:00 in Madrid: UTC+1 on Saturday, UTC+2 from Sunday 29 March (the change at 02:00).
    assert slots == [at(2026, 3, 28, 8), at(2026, 3, 29, 7), at(2026, 3, 30, 7)]


def test_nine_o_clock_follows_madrid_across_the_autumn_change():
    slots = free_slots(
        rules=rules(),
        hours=EVERY_DAY,
        zone=MADRID,
        now=at(2026, 10, 1),
        window_start=at(2026, 10, 24),
        window_end=at(2026, 10, 27),
        taken=[],
    )
    assert slots == [at(2026, 10, 24, 7), at(2026, 10, 25, 8), at(2026, 10, 26, 8)]


def test_a_night_opening_is_an_hour_shorter_in_spring_and_longer_in_autumn():
    night = {"sun": [["00:00", "04:00"]]}

    def count(day_start):
        return len(
            free_slots(
                rules=rules(60),
                hours=night,
                zone=MADRID,
                now=at(2026, 1, 1),
                window_start=day_start - dt.timedelta(hours=6),
                window_end=day_start + dt.timedelta(hours=12),
                taken=[],
            )
        )

    # 00:00-04:00 on the change's night lasts 3 real hours in March, 5 in October: starts every 15 min.
    assert count(at(2026, 3, 29)) == 9
    assert count(at(2026, 10, 25)) == 17
    assert count(at(2026, 3, 22)) == 13  # an ordinary Sunday: 4 hours


def test_a_wall_clock_time_the_spring_change_skips_does_not_exist():
    assert local_datetime(dt.date(2026, 3, 29), "02:30", MADRID) is None
    assert local_datetime(dt.date(2026, 3, 29), "03:00", MADRID) == dt.datetime(2026, 3, 29, 1, tzinfo=UTC)


def test_buffers_keep_a_slot_clear_of_a_taken_span():
    hours = {"mon": [["09:00", "13:00"]]}
    slots = free_slots(
        rules=rules(30, before=15, after=15),
        hours=hours,
        zone=ZoneInfo("UTC"),
        now=at(2030, 3, 1),
        window_start=at(2030, 3, 4),
        window_end=at(2030, 3, 5),
        taken=[Taken(at(2030, 3, 4, 10), at(2030, 3, 4, 11))],
    )
    assert slots == [
        at(2030, 3, 4, 9, 0),
        at(2030, 3, 4, 9, 15),  # ends 09:45 + 15 min buffer = 10:00: touches, does not overlap
        at(2030, 3, 4, 11, 15),
        at(2030, 3, 4, 11, 30),
        at(2030, 3, 4, 11, 45),
        at(2030, 3, 4, 12, 0),
        at(2030, 3, 4, 12, 15),
        at(2030, 3, 4, 12, 30),
    ]


def test_minimum_notice_horizon_and_limit():
    hours = {d: [["09:00", "12:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    now = at(2030, 3, 4, 9, 10)
    slots = free_slots(
        rules=rules(60, notice=60, horizon=1),
        hours=hours,
        zone=ZoneInfo("UTC"),
        now=now,
        window_start=at(2030, 3, 4),
        window_end=at(2030, 3, 10),
        taken=[],
    )
    # Not before 10:10 (notice), the grid from the opening: 10:15, 10:30, 10:45, 11:00; nothing past a day.
    assert slots == [
        at(2030, 3, 4, 10, 15),
        at(2030, 3, 4, 10, 30),
        at(2030, 3, 4, 10, 45),
        at(2030, 3, 4, 11),
        at(2030, 3, 5, 9),  # the horizon ends at 09:10 the next day
    ]
    limited = free_slots(
        rules=rules(60),
        hours=hours,
        zone=ZoneInfo("UTC"),
        now=now,
        window_start=at(2030, 3, 4),
        window_end=at(2030, 3, 10),
        taken=[],
        limit=3,
    )
    assert limited == [at(2030, 3, 4, 9, 15), at(2030, 3, 4, 9, 30), at(2030, 3, 4, 9, 45)]


def test_the_daily_cap_counts_local_days():
    hours = {d: [["09:00", "11:00"]] for d in ("mon", "tue")}
    slots = free_slots(
        rules=rules(60, cap=1),
        hours=hours,
        zone=MADRID,
        now=at(2030, 3, 1),
        window_start=at(2030, 3, 4),
        window_end=at(2030, 3, 6),
        taken=[],
        # 23:30 UTC on Monday is already Tuesday in Madrid: Tuesday is full, Monday is not.
        booked_starts=[at(2030, 3, 4, 23, 30)],
    )
    assert {s.astimezone(MADRID).date() for s in slots} == {dt.date(2030, 3, 4)}


def test_slot_fits_checks_hours_notice_and_taken_spans():
    hours = {"mon": [["09:00", "12:00"]]}
    common = {"rules": rules(30, after=10), "hours": hours, "zone": ZoneInfo("UTC"), "now": at(2030, 3, 1)}
    assert slot_fits(start=at(2030, 3, 4, 9, 5), taken=[], **common)
    assert not slot_fits(start=at(2030, 3, 4, 11, 45), taken=[], **common)  # past closing
    assert not slot_fits(
        start=at(2030, 3, 4, 10), taken=[Taken(at(2030, 3, 4, 10, 35), at(2030, 3, 4, 11))], **common
    )
    assert not slot_fits(start=at(2030, 3, 4, 10), taken=[], **{**common, "now": at(2030, 3, 4, 10, 1)})
