"""Writes of the calendar app: connecting calendars, services, bookings.

A booking is decided by the database: its 5-minute `BookingSlot` rows are unique per calendar, so of two
customers taking the same time at once one insert fails and that customer is offered the next free
slot. The provider's event is created after the row commits, under an id derived from the booking's
idempotency key, so a retry never makes a second event.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.alerts.models import CALENDAR_RECONNECT, Severity
from apps.alerts.services import alert_system_raise
from apps.audit.services import audit_record
from apps.calendar import availability, google_calendar, outlook, selectors
from apps.calendar.errors import CalendarUnavailable, EventConflict, ReconnectNeeded, SlotTaken
from apps.calendar.models import (
    REMINDER_HOURS_MAX,
    SLOT_MINUTES,
    Booking,
    BookingSlot,
    Connection,
    PendingAuthorization,
    Service,
)
from apps.calendar.providers import CalendarClient, NewEvent, client_for
from chatbot.exceptions import Forbidden, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

_FLOWS: dict[str, ModuleType] = {"google": google_calendar, "microsoft": outlook}


# --- connections -----------------------------------------------------------------------------------
def connection_connect_start(
    *, workspace_id: int, user_id: int, session_key: str, provider: str, redirect_uri: str
) -> str:
    """Start connecting a calendar: the provider's authorization URL to send the staff member to.

    The `state` is bound to this user, workspace and login session, used once, and expires after
    CALENDAR_CONNECT_TTL seconds.
    """
    if provider not in _FLOWS:
        raise ValidationFailed(
            "Unknown calendar provider.", details={"provider": ["Not google or microsoft."]}
        )
    if not session_key:
        raise Forbidden("A calendar is connected from a staff login session.")
    state = secrets.token_urlsafe(32)
    url, secret = _FLOWS[provider].authorization_start(redirect_uri=redirect_uri, state=state)
    PendingAuthorization.objects.filter(expires_at__lt=timezone.now()).delete()
    PendingAuthorization.objects.create(
        workspace_id=workspace_id,
        user_id=user_id,
        session_key=session_key,
        provider=provider,
        state=state,
        redirect_uri=redirect_uri,
        secret=secret,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.CALENDAR_CONNECT_TTL),
    )
    return str(url)


def connection_connect_finish(
    *, workspace_id: int, user_id: int, session_key: str, params: dict[str, str]
) -> Connection:
    """Finish connecting with the provider's redirect parameters (`code`, `state`, or `error`)."""
    state = params.get("state", "")
    # Claim the pending flow once: a replayed callback finds nothing.
    pending = PendingAuthorization.objects.filter(state=state).first() if state else None
    if pending is None or not PendingAuthorization.objects.filter(pk=pending.pk).delete()[0]:
        raise Forbidden(
            "This calendar authorization is unknown or was used already.", code="calendar_state_invalid"
        )
    if (
        pending.workspace_id != workspace_id
        or pending.user_id != user_id
        or not secrets.compare_digest(pending.session_key, session_key)
    ):
        raise Forbidden(
            "This calendar authorization was started by another session.", code="calendar_state_invalid"
        )
    if pending.expires_at < timezone.now():
        raise Forbidden(
            "This calendar authorization has expired; start again.", code="calendar_state_invalid"
        )
    if params.get("error"):
        raise ValidationFailed(
            f"The calendar was not connected: {params['error']}.", code="calendar_authorization_refused"
        )
    grant = _FLOWS[pending.provider].authorization_finish(
        secret=pending.secret, redirect_uri=pending.redirect_uri, params=params
    )
    with transaction.atomic():
        connection, created = Connection.objects.select_for_update().get_or_create(
            workspace_id=workspace_id,
            provider=pending.provider,
            account_email=grant.account_email,
            calendar_id="primary",
            defaults={"token": grant.token, "account_key": grant.account_key, "connected_by_id": user_id},
        )
        if not created:
            connection.token, connection.account_key = grant.token, grant.account_key
            connection.status, connection.last_error, connection.connected_by_id = (
                Connection.Status.CONNECTED,
                "",
                user_id,
            )
            connection.save()
        audit_record(
            workspace_id=workspace_id,
            actor_id=user_id,
            action="calendar.connect",
            target=connection,
            details={"provider": connection.provider, "account": connection.account_email},
        )
    return connection


def connection_disconnect(*, connection: Connection, actor_id: int | None) -> Connection:
    """Revoke the grant at the provider (Google; Microsoft has no such call) and forget the tokens."""
    if connection.token:
        try:
            client_for(connection).revoke()
        except CalendarUnavailable:
            logger.warning("calendar revoke failed for connection %s; tokens forgotten anyway", connection.pk)
    with transaction.atomic():
        connection.token, connection.account_key = "", ""
        connection.status = Connection.Status.DISCONNECTED
        connection.save(update_fields=["token", "account_key", "status", "updated_at"])
        audit_record(
            workspace_id=connection.workspace_id,
            actor_id=actor_id,
            action="calendar.disconnect",
            target=connection,
        )
    return connection


def connection_mark_reconnect_needed(*, connection: Connection, reason: str) -> bool:
    """Connected -> reconnect needed, with one high alert to staff; False when it was not connected."""
    with transaction.atomic():
        changed = Connection.objects.filter(pk=connection.pk, status=Connection.Status.CONNECTED).update(
            status=Connection.Status.RECONNECT_NEEDED, last_error=reason[:255], updated_at=timezone.now()
        )
        if changed:
            alert_system_raise(
                workspace_id=connection.workspace_id,
                kind=CALENDAR_RECONNECT,
                severity=Severity.HIGH,
                summary=f"{connection.get_provider_display()} {connection.account_email}: {reason}",
            )
    connection.refresh_from_db(fields=["status", "last_error"])
    return bool(changed)


def _keep_token(connection: Connection, client: CalendarClient) -> None:
    if client.token != connection.token and client.token:
        connection.token = client.token
        Connection.objects.filter(pk=connection.pk).update(token=connection.token, updated_at=timezone.now())


def _with_client(connection: Connection, call: Any) -> Any:
    """Run `call(client)` for a connection: refreshed tokens kept, a refused grant recorded."""
    client = client_for(connection)
    try:
        return call(client)
    except ReconnectNeeded as exc:
        connection_mark_reconnect_needed(connection=connection, reason=exc.message)
        raise
    finally:
        _keep_token(connection, client)


def connection_busy(
    *, connection: Connection, start: dt.datetime, end: dt.datetime
) -> list[availability.Taken]:
    spans = _with_client(connection, lambda client: client.busy(start, end))
    return [availability.Taken(s, e) for s, e in spans]


# --- services --------------------------------------------------------------------------------------
_SERVICE_FIELDS = {
    "name",
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "price",
    "connection_id",
    "min_notice_minutes",
    "horizon_days",
    "daily_cap",
    "is_active",
    "reminder_hours",
    "reminder_template",
}


def _service_check(service: Service) -> None:
    problems: dict[str, list[str]] = {}
    for name in ("duration_minutes", "buffer_before_minutes", "buffer_after_minutes"):
        if getattr(service, name) % SLOT_MINUTES:
            problems[name] = [f"Must be a multiple of {SLOT_MINUTES} minutes."]
    if service.duration_minutes <= 0:
        problems["duration_minutes"] = ["Must be positive."]
    hours = service.reminder_hours
    if not isinstance(hours, list) or any(
        isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= REMINDER_HOURS_MAX for h in hours
    ):
        problems["reminder_hours"] = [f"A list of whole hours from 1 to {REMINDER_HOURS_MAX}."]
    elif len(set(hours)) != len(hours) or len(hours) > 5:
        problems["reminder_hours"] = ["Each hour at most once, and at most 5 of them."]
    if problems:
        raise ValidationFailed("The service is not valid.", details=problems)
    if (
        service.connection_id
        and not Connection.objects.filter(
            pk=service.connection_id, workspace_id=service.workspace_id
        ).exists()
    ):
        raise NotFound("No such calendar connection.")


@transaction.atomic
def service_create(*, workspace_id: int, actor_id: int | None, **fields: Any) -> Service:
    unknown = set(fields) - _SERVICE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    service = Service(workspace_id=workspace_id, **fields)
    _service_check(service)
    service.save()
    audit_record(
        workspace_id=workspace_id, actor_id=actor_id, action="calendar.service_create", target=service
    )
    return service


@transaction.atomic
def service_update(*, service: Service, actor_id: int | None, **fields: Any) -> Service:
    unknown = set(fields) - _SERVICE_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for name, value in fields.items():
        setattr(service, name, value)
    _service_check(service)
    service.save()
    audit_record(
        workspace_id=service.workspace_id,
        actor_id=actor_id,
        action="calendar.service_update",
        target=service,
        details={"fields": sorted(fields)},
    )
    return service


# --- availability ----------------------------------------------------------------------------------
def _usable(connection: Connection | None) -> bool:
    return connection is not None and connection.status == Connection.Status.CONNECTED


def service_slots(
    *,
    service: Service,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
    limit: int | None = None,
    exclude_booking_id: int | None = None,
) -> list[dt.datetime]:
    """Free starts (UTC) of a service in a window. Asks the provider for busy times when the calendar is
    connected; without a usable calendar the platform's own bookings alone decide."""
    now = now or timezone.now()
    hours, zone = selectors.business_hours(service.workspace_id)
    rules = selectors.service_rules(service)
    window_end = end + rules.duration + rules.buffer_after
    taken = selectors.bookings_taken(
        calendar_key=service.calendar_key, start=start, end=window_end, exclude_id=exclude_booking_id
    )
    connection = service.connection
    if _usable(connection):
        assert connection is not None  # noqa: S101 - _usable said so; for the type checker
        try:
            taken += connection_busy(connection=connection, start=start - rules.buffer_before, end=window_end)
        except (ReconnectNeeded, CalendarUnavailable):
            logger.warning("calendar %s unusable; slots from the platform's bookings only", connection.pk)
    return availability.free_slots(
        rules=rules,
        hours=hours,
        zone=zone,
        now=now,
        window_start=start,
        window_end=end,
        taken=taken,
        booked_starts=selectors.service_booked_starts(
            service=service, start=start, end=end, exclude_id=exclude_booking_id
        ),
        limit=limit,
    )


def _next_slot(service: Service, after: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    slots = service_slots(
        service=service,
        start=after + dt.timedelta(minutes=SLOT_MINUTES),
        end=now + dt.timedelta(days=service.horizon_days),
        now=now,
        limit=1,
    )
    return slots[0] if slots else None


# --- bookings --------------------------------------------------------------------------------------
def _slot_rows(booking: Booking, service: Service) -> list[BookingSlot]:
    low = booking.start - dt.timedelta(minutes=service.buffer_before_minutes)
    high = booking.end + dt.timedelta(minutes=service.buffer_after_minutes)
    rows, step = [], dt.timedelta(minutes=SLOT_MINUTES)
    while low < high:
        rows.append(BookingSlot(booking=booking, calendar_key=booking.calendar_key, start=low))
        low += step
    return rows


def _check_start(start: dt.datetime) -> dt.datetime:
    if timezone.is_naive(start):
        raise ValidationFailed("The start must carry a time zone.", details={"start": ["Naive datetime."]})
    start = start.astimezone(dt.UTC)
    if start.second or start.microsecond or start.minute % SLOT_MINUTES:
        raise ValidationFailed(
            f"The start must be on a {SLOT_MINUTES}-minute boundary.", details={"start": ["Not aligned."]}
        )
    return start


def _event_for(booking: Booking, service: Service) -> NewEvent:
    who = booking.customer_name or booking.customer_phone or "WhatsApp"
    return NewEvent(
        start=booking.start,
        end=booking.end,
        summary=f"{service.name}: {who}",
        description=f"Booked through WhatsApp. Phone: {booking.customer_phone or '-'}. Ref: {booking.pk}",
        idempotency_key=f"booking-{booking.workspace_id}-{booking.idempotency_key}",
    )


def _claim(booking: Booking, service: Service, *, release: Booking | None = None) -> None:
    """Insert the booking and its slot rows; the unique slot key refuses an overlap (IntegrityError)."""
    with transaction.atomic():
        if release is not None:
            BookingSlot.objects.filter(booking=release).delete()
        booking.save()
        BookingSlot.objects.bulk_create(_slot_rows(booking, service))


def _place_event(booking: Booking, service: Service, now: dt.datetime) -> Booking:
    """Create the provider's event for a committed booking; without a usable calendar it stays pending."""
    connection = service.connection
    if booking.status != Booking.Status.CONFIRMED or connection is None:
        return booking
    try:
        event_id = _with_client(connection, lambda client: client.event_create(_event_for(booking, service)))
    except EventConflict as exc:
        # Taken at the provider meanwhile (someone wrote in the calendar): give the slot back.
        _release(booking)
        raise SlotTaken(next_start=_next_slot(service, booking.start, now)) from exc
    except (ReconnectNeeded, CalendarUnavailable):
        Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.PENDING)
        booking.status = Booking.Status.PENDING
        return booking
    Booking.objects.filter(pk=booking.pk).update(external_event_id=event_id)
    booking.external_event_id = event_id
    return booking


def _release(booking: Booking) -> None:
    with transaction.atomic():
        BookingSlot.objects.filter(booking=booking).delete()
        Booking.objects.filter(pk=booking.pk).update(
            status=Booking.Status.CANCELLED, cancelled_at=timezone.now()
        )
    booking.status = Booking.Status.CANCELLED


def booking_create(
    *,
    service: Service,
    start: dt.datetime,
    idempotency_key: str,
    contact_id: int | None = None,
    customer_name: str = "",
    customer_phone: str = "",
    now: dt.datetime | None = None,
    rescheduled_from: Booking | None = None,
) -> Booking:
    """Book a service at `start`: availability checked again (rules, bookings, the provider's busy times),
    the slot claimed in the database, then the event created at the provider.

    The same idempotency key returns the same booking. A taken slot raises SlotTaken with the next free
    start. Without a usable calendar (none, reconnect needed, an outage) the booking is `pending`: a
    person confirms it.
    """
    now = now or timezone.now()
    if not idempotency_key or len(idempotency_key) > 64:
        raise ValidationFailed("An idempotency key of 1 to 64 characters is required.")
    existing = Booking.objects.filter(
        workspace_id=service.workspace_id, idempotency_key=idempotency_key
    ).first()
    if existing is not None:
        return existing
    if not service.is_active:
        raise ValidationFailed("This service cannot be booked.", code="service_inactive")
    start = _check_start(start)
    rules = selectors.service_rules(service)
    end = start + rules.duration
    fits = service_slots_fit(
        service=service,
        start=start,
        now=now,
        exclude_booking_id=rescheduled_from.pk if rescheduled_from else None,
    )
    if not fits:
        raise SlotTaken(next_start=_next_slot(service, start, now))
    confirmed = _usable(service.connection) and fits == "checked"
    booking = Booking(
        workspace_id=service.workspace_id,
        service=service,
        contact_id=contact_id,
        customer_name=customer_name[:255],
        customer_phone=customer_phone[:32],
        start=start,
        end=end,
        status=Booking.Status.CONFIRMED if confirmed else Booking.Status.PENDING,
        calendar_key=service.calendar_key,
        connection=service.connection,
        idempotency_key=idempotency_key,
        rescheduled_from=rescheduled_from,
    )
    try:
        _claim(booking, service, release=rescheduled_from)
    except IntegrityError:
        again = Booking.objects.filter(
            workspace_id=service.workspace_id, idempotency_key=idempotency_key
        ).first()
        if again is not None:
            return again  # the same request, twice at once: one booking
        raise SlotTaken(next_start=_next_slot(service, start, now)) from None
    try:
        return _place_event(booking, service, now)
    except SlotTaken:
        if rescheduled_from is not None:
            _restore_slots(rescheduled_from)
        raise


def _restore_slots(booking: Booking) -> None:
    """A move failed after the old booking's slots were let go: take them back (unless taken meanwhile)."""
    try:
        with transaction.atomic():
            BookingSlot.objects.bulk_create(_slot_rows(booking, booking.service))
    except IntegrityError:
        logger.warning("booking %s lost its slots during a failed move", booking.pk)


def service_slots_fit(
    *, service: Service, start: dt.datetime, now: dt.datetime, exclude_booking_id: int | None = None
) -> str:
    """ "checked" when the start is free by the rules, the bookings and the provider; "unchecked" when free
    but the provider could not be asked; "" when not free."""
    hours, zone = selectors.business_hours(service.workspace_id)
    rules = selectors.service_rules(service)
    end = start + rules.duration
    taken = selectors.bookings_taken(
        calendar_key=service.calendar_key, start=start, end=end, exclude_id=exclude_booking_id
    )
    booked = selectors.service_booked_starts(
        service=service, start=start, end=end, exclude_id=exclude_booking_id
    )
    if not availability.slot_fits(
        rules=rules, hours=hours, zone=zone, now=now, start=start, taken=taken, booked_starts=booked
    ):
        return ""
    connection = service.connection
    if not _usable(connection):
        return "unchecked"
    assert connection is not None  # noqa: S101 - _usable said so; for the type checker
    try:
        busy = connection_busy(
            connection=connection, start=start - rules.buffer_before, end=end + rules.buffer_after
        )
    except (ReconnectNeeded, CalendarUnavailable):
        return "unchecked"
    old = Booking.objects.filter(pk=exclude_booking_id or 0).values_list("start", "end").first()
    if old is not None:
        busy = _minus(busy, *old)  # the event being moved is busy at the provider until it moves
    if any(t.start < end + rules.buffer_after and t.end > start - rules.buffer_before for t in busy):
        return ""
    return "checked"


def _minus(spans: list[availability.Taken], low: dt.datetime, high: dt.datetime) -> list[availability.Taken]:
    """The spans with [low, high) cut out (free/busy merges and clips, so no exact match is possible)."""
    left = []
    for span in spans:
        if span.end <= low or span.start >= high:
            left.append(span)
            continue
        if span.start < low:
            left.append(availability.Taken(span.start, low))
        if span.end > high:
            left.append(availability.Taken(high, span.end))
    return left


def booking_cancel(*, booking: Booking) -> Booking:
    """Cancel an active booking: its slots freed, its event deleted at the provider (best effort: an
    outage leaves the event for staff to delete, and is logged)."""
    if booking.status == Booking.Status.CANCELLED:
        return booking
    _release(booking)
    connection = booking.connection
    if booking.external_event_id and _usable(connection):
        assert connection is not None  # noqa: S101 - _usable said so; for the type checker
        try:
            _with_client(connection, lambda client: client.event_delete(booking.external_event_id))
        except (ReconnectNeeded, CalendarUnavailable):
            logger.warning("event of booking %s not deleted at the provider", booking.pk)
    return booking


def booking_reschedule(
    *, booking: Booking, start: dt.datetime, idempotency_key: str, now: dt.datetime | None = None
) -> Booking:
    """Move a booking: a new booking at `start` (its slots may overlap the old ones), then the old one
    cancelled. A taken start raises SlotTaken and leaves the old booking as it was."""
    if booking.status == Booking.Status.CANCELLED:
        raise ValidationFailed("A cancelled booking cannot be moved.", code="booking_cancelled")
    moved = booking_create(
        service=booking.service,
        start=start,
        idempotency_key=idempotency_key,
        contact_id=booking.contact_id,
        customer_name=booking.customer_name,
        customer_phone=booking.customer_phone,
        now=now,
        rescheduled_from=booking,
    )
    if moved.pk != booking.pk and moved.status != Booking.Status.CANCELLED:
        booking_cancel(booking=booking)
    return moved
