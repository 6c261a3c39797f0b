"""Reads of the calendar app, always scoped to a workspace."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import QuerySet

from apps.accounts.models import Workspace
from apps.calendar.availability import Rules, Taken
from apps.calendar.models import Booking, Connection, Service
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
