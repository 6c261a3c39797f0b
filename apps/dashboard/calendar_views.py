"""Dashboard pages of the calendar app: connect and disconnect calendars, services, bookings."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Membership, Role
from apps.calendar import selectors, services
from apps.calendar.errors import SlotTaken
from apps.calendar.models import Booking, Connection
from apps.dashboard import forms
from apps.dashboard.access import member_page
from apps.dashboard.views import _form_refused, _page, _refused
from chatbot.exceptions import DomainError


def _connections(membership: Membership) -> list[tuple[int, str]]:
    return [
        (c.pk, f"{c.get_provider_display()} · {c.account_email}")
        for c in selectors.connection_list(workspace=membership.workspace)
        if c.status != Connection.Status.DISCONNECTED
    ]


def _redirect_uri(request: HttpRequest) -> str:
    return settings.CALENDAR_OAUTH_REDIRECT_URL or request.build_absolute_uri(
        reverse("dashboard:calendar-callback")
    )


@member_page(read=Role.VIEWER, write=Role.ADMIN)
def calendar_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Calendars, services and the coming bookings; admins add a service here (POST)."""
    form = forms.CalendarServiceForm(
        request.POST if request.method == "POST" else None, connections=_connections(membership)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.service_create(
                workspace_id=membership.workspace_id, actor_id=request.user.pk, **form.service_fields()
            )
        except DomainError as exc:
            _form_refused(form, exc)
        else:
            messages.success(request, _("Service saved."))
            return redirect("dashboard:calendar")
    zone = selectors.business_hours(membership.workspace_id)[1]
    now = timezone.now()
    bookings = selectors.booking_list(
        workspace=membership.workspace, start=now - dt.timedelta(hours=12), end=now + dt.timedelta(days=60)
    ).filter(status__in=Booking.ACTIVE)[:200]
    week, days = _week(request, membership, zone, now)
    response = _page(
        request,
        membership,
        "dashboard/calendar.html",
        connections=selectors.connection_list(workspace=membership.workspace),
        services=selectors.service_list(workspace=membership.workspace),
        bookings=bookings,
        zone=zone.key,
        form=form,
        providers=Connection.Provider.choices,
        booking_form=forms.CalendarBookingForm(services=_services(membership)),
        week=week,
        days=days,
    )
    # The connect buttons post here and are redirected to the provider's consent page: the browser
    # applies form-action to that redirect too, so the providers' origins are allowed on this page.
    response["Content-Security-Policy"] = _policy_with_providers()
    return response


@member_page(read=Role.ADMIN, write=Role.ADMIN)
def service_edit(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """Edit a service (its rules, whether it is bookable, its reminders)."""
    service = selectors.service_get(workspace=membership.workspace, pk=pk)
    initial = {
        **{
            name: getattr(service, name)
            for name in forms.CalendarServiceEditForm.base_fields
            if hasattr(service, name)
        },
        "connection": service.connection_id,
        "reminder_hours": ", ".join(str(h) for h in service.reminder_hours or []),
    }
    form = forms.CalendarServiceEditForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        connections=_connections(membership),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.service_update(service=service, actor_id=request.user.pk, **form.service_fields())
        except DomainError as exc:
            _form_refused(form, exc)
        else:
            messages.success(request, _("Service saved."))
            return redirect("dashboard:calendar")
    return _page(request, membership, "dashboard/calendar_service.html", service=service, form=form)


def _services(membership: Membership) -> list[tuple[int, str]]:
    return [(s.pk, s.name) for s in selectors.service_list(workspace=membership.workspace, active_only=True)]


def _week(
    request: HttpRequest, membership: Membership, zone: ZoneInfo, now: dt.datetime
) -> tuple[int, list[tuple[dt.date, list[Booking]]]]:
    """The week view: `?week=N` weeks from this one (-52..52), Monday first, each local day's bookings."""
    try:
        week = max(-52, min(52, int(request.GET.get("week", "0"))))
    except ValueError:
        week = 0
    today = now.astimezone(zone).date()
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=week)
    start = dt.datetime.combine(monday, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(0), tzinfo=zone)
    rows = list(selectors.booking_list(workspace=membership.workspace, start=start, end=end)[:500])
    days = [monday + dt.timedelta(days=n) for n in range(7)]
    return week, [(day, [b for b in rows if b.start.astimezone(zone).date() == day]) for day in days]


@require_POST
@member_page(read=Role.AGENT, write=Role.AGENT)
def booking_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    """A booking by staff at the business's local date and time; checked like any other."""
    form = forms.CalendarBookingForm(request.POST, services=_services(membership))
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(
                request, f"{form.fields[field].label if field in form.fields else ''}: {errors[0]}"
            )
        return redirect("dashboard:calendar")
    data = form.cleaned_data
    zone = selectors.business_hours(membership.workspace_id)[1]
    service = selectors.service_get(workspace=membership.workspace, pk=data["service"])
    start = dt.datetime.combine(data["date"], data["time"], tzinfo=zone)
    try:
        booking = services.booking_create(
            service=service,
            start=start,
            idempotency_key=data["idempotency_key"],
            customer_name=data["customer_name"],
            customer_phone=data["customer_phone"],
        )
    except SlotTaken as exc:
        if exc.next_start is None:
            messages.error(request, _("That time is not free, and there is no free time soon."))
        else:
            messages.error(
                request,
                _("That time is not free. The next free time is %(when)s.")
                % {"when": exc.next_start.astimezone(zone).strftime("%Y-%m-%d %H:%M")},
            )
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            _("Booked: %(service)s on %(when)s.")
            % {"service": service.name, "when": booking.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")},
        )
    return redirect("dashboard:calendar")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _policy_with_providers() -> str:
    origins = " ".join(
        sorted({_origin(settings.GOOGLE_ACCOUNTS_URL), _origin(settings.MICROSOFT_AUTHORITY_URL)})
    )
    return settings.CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origins}")


@require_POST
@member_page(read=Role.ADMIN, write=Role.ADMIN)
def calendar_connect(request: HttpRequest, membership: Membership, provider: str) -> HttpResponse:
    """Send the admin to the provider's consent page; the state is bound to this login session."""
    if not request.session.session_key:
        request.session.save()
    try:
        url = services.connection_connect_start(
            workspace_id=membership.workspace_id,
            user_id=int(request.user.pk or 0),
            session_key=request.session.session_key or "",
            provider=provider,
            redirect_uri=_redirect_uri(request),
        )
    except DomainError as exc:
        _refused(request, exc)
        return redirect("dashboard:calendar")
    return redirect(url)


@require_GET
@member_page(read=Role.ADMIN, write=Role.ADMIN)
def calendar_callback(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Where the provider sends the admin back with `code` and `state` (or `error`)."""
    params = {k: request.GET[k] for k in ("code", "state", "error") if request.GET.get(k)}
    try:
        connection = services.connection_connect_finish(
            workspace_id=membership.workspace_id,
            user_id=int(request.user.pk or 0),
            session_key=request.session.session_key or "",
            params=params,
        )
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(
            request, _("Calendar connected: %(account)s.") % {"account": connection.account_email}
        )
    return redirect("dashboard:calendar")


@require_POST
@member_page(read=Role.ADMIN, write=Role.ADMIN)
def calendar_disconnect(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    connection = selectors.connection_get(workspace=membership.workspace, pk=pk)
    services.connection_disconnect(connection=connection, actor_id=request.user.pk)
    messages.success(request, _("Calendar disconnected."))
    return redirect("dashboard:calendar")


@require_POST
@member_page(read=Role.AGENT, write=Role.AGENT)
def booking_cancel(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    booking = selectors.booking_get(workspace=membership.workspace, pk=pk)
    services.booking_cancel(booking=booking)
    messages.success(request, _("Booking cancelled."))
    return redirect("dashboard:calendar")
