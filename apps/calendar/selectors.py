"""Reads of the calendar app, always scoped to a workspace."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import QuerySet

from apps.accounts.models import Workspace
from apps.calendar.availability import Rules, Taken
from apps.calendar.models import REMINDER_HOURS_MAX, Booking, BookingReminder, Connection, Service
from chatbot.exceptions import NotFound


def connection_list(*, workspace: Workspace) -> QuerySet[Connection]:
    return Connection.objects.filter(workspace=workspace).order_by("provider", "account_email")


def connection_get(*, workspace: Workspace, pk: int) -> Connection:
    try:
        return Connection.objects.get(workspace=workspace, pk=pk)
    except Connection.DoesNotExist as exc:
        raise NotFound("No such calendar connection.") from exc


def service_list(*, workspace: Workspace, active_only: bool = False) -> QuerySet[Service]:
    services = Service.objects.filter(workspace=workspace).select_related("connection").order_by("name")
    return services.filter(is_active=True) if active_only else services


def service_get(*, workspace: Workspace, pk: int) -> Service:
    try:
        return Service.objects.select_related("connection").get(workspace=workspace, pk=pk)
    except Service.DoesNotExist as exc:
        raise NotFound("No such service.") from exc


def booking_list(
    *, workspace: Workspace, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> QuerySet[Booking]:
    bookings = Booking.objects.filter(workspace=workspace).select_related("service", "contact")
    if start is not None:
        bookings = bookings.filter(end__gt=start)
    if end is not None:
        bookings = bookings.filter(start__lt=end)
    return bookings.order_by("start")


def booking_get(*, workspace: Workspace, pk: int) -> Booking:
    try:
        return Booking.objects.select_related("service", "connection").get(workspace=workspace, pk=pk)
    except Booking.DoesNotExist as exc:
        raise NotFound("No such booking.") from exc


def service_rules(service: Service) -> Rules:
    return Rules(
        duration=dt.timedelta(minutes=service.duration_minutes),
        buffer_before=dt.timedelta(minutes=service.buffer_before_minutes),
        buffer_after=dt.timedelta(minutes=service.buffer_after_minutes),
        min_notice=dt.timedelta(minutes=service.min_notice_minutes),
        horizon=dt.timedelta(days=service.horizon_days),
        daily_cap=service.daily_cap,
    )


def business_hours(workspace_id: int) -> tuple[dict[str, list[list[str]]], ZoneInfo]:
    """The business profile's opening hours and time zone (the workspace's zone without a profile)."""
    from apps.assistant.models import BusinessProfile

    profile = BusinessProfile.objects.filter(workspace_id=workspace_id).first()
    hours = dict(profile.opening_hours) if profile else {}
    name = profile.timezone if profile else Workspace.objects.get(pk=workspace_id).timezone
    try:
        return hours, ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return hours, ZoneInfo("UTC")


def bookings_taken(
    *, calendar_key: str, start: dt.datetime, end: dt.datetime, exclude_id: int | None = None
) -> list[Taken]:
    """Active bookings of one calendar near a window, each widened by its own service's buffers."""
    margin = dt.timedelta(hours=8)  # longer than any buffer: bookings whose buffers reach the window
    rows = (
        Booking.objects.filter(
            calendar_key=calendar_key,
            status__in=Booking.ACTIVE,
            start__lt=end + margin,
            end__gt=start - margin,
        )
        .exclude(pk=exclude_id or 0)
        .values_list("start", "end", "service__buffer_before_minutes", "service__buffer_after_minutes")
    )
    return [
        Taken(s - dt.timedelta(minutes=before), e + dt.timedelta(minutes=after))
        for s, e, before, after in rows
    ]


def service_booked_starts(
    *, service: Service, start: dt.datetime, end: dt.datetime, exclude_id: int | None = None
) -> list[dt.datetime]:
    """Starts of the service's active bookings around a window (for the daily cap)."""
    day = dt.timedelta(days=1, hours=14)  # any local day touching the window, whatever the zone
    return list(
        Booking.objects.filter(
            service=service, status__in=Booking.ACTIVE, start__gte=start - day, start__lt=end + day
        )
        .exclude(pk=exclude_id or 0)
        .values_list("start", flat=True)
    )


def reminders_due(*, now: dt.datetime) -> list[tuple[Booking, int, list[int]]]:
    """Upcoming active bookings with a reminder due now: (booking, the hours-before to send, earlier
    ones never sent, now stale). Only the latest due reminder of a booking goes out; the rows already
    written (sent or skipped) are not due again."""
    bookings = list(
        Booking.objects.filter(
            status__in=Booking.ACTIVE,
            start__gt=now,
            start__lte=now + dt.timedelta(hours=REMINDER_HOURS_MAX),
            contact__isnull=False,
        ).select_related("service", "contact")
    )
    done = set(BookingReminder.objects.filter(booking__in=bookings).values_list("booking_id", "hours_before"))
    due = []
    for booking in bookings:
        hours = [
            h
            for h in booking.service.reminder_hours or []
            if isinstance(h, int)
            and booking.start - dt.timedelta(hours=h) <= now
            and (booking.pk, h) not in done
        ]
        if hours:
            smallest = min(hours)
            due.append((booking, smallest, [h for h in hours if h != smallest]))
    return due


def booking_reminded(*, workspace_id: int, contact_id: int, now: dt.datetime) -> Booking | None:
    """The contact's next active booking that a reminder was sent for in the last two days: what a
    bare "cancel" or "change" from them is about."""
    return (
        Booking.objects.select_related("service")
        .filter(
            workspace_id=workspace_id,
            contact_id=contact_id,
            status__in=Booking.ACTIVE,
            start__gt=now,
            reminders__status=BookingReminder.Status.SENT,
            reminders__created_at__gte=now - dt.timedelta(days=2),
        )
        .order_by("start")
        .first()
    )
