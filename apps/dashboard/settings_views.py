"""Settings pages beside the business profile: a provider's test call, WhatsApp numbers (webhook set-up
and a connection check), members and roles, and the audit log. Doors: selectors and services do the work."""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import selectors as account_selectors
from apps.accounts import services as account_services
from apps.accounts.models import Membership, Role
from apps.assistant import providers
from apps.audit import selectors as audit_selectors
from apps.dashboard import forms
from apps.dashboard.access import member_page
from apps.dashboard.templatetags.dashboard_labels import provider_outcome_label
from apps.dashboard.views import _form_refused, _page, _refused
from apps.whatsapp import selectors as channel_selectors
from apps.whatsapp import services as channel_services
from apps.whatsapp.models import Channel
from chatbot.exceptions import DomainError

AUDIT_PAGE_SIZE = 50


def _htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- a provider's test call ------------------------------------------------------------------------
@require_POST
@member_page(write=Role.ADMIN)
def provider_test(request: HttpRequest, membership: Membership, provider: str) -> HttpResponse:
    """Call the provider once as a reply would; the answer (or why it failed) is shown in the row."""
    if provider not in providers.LLM_PROVIDERS:
        return HttpResponse(status=404)
    result: dict[str, Any] = {"provider": provider}
    try:
        probe = providers.provider_probe(workspace_id=membership.workspace_id, name=provider)
    except providers.ProviderError as exc:
        result.update(ok=False, message=provider_outcome_label(exc.outcome), status=exc.status)
    except DomainError as exc:
        result.update(ok=False, message=exc.message)
    else:
        result.update(ok=True, probe=probe)
    if _htmx(request):
        return render(request, "dashboard/_provider_test.html", {"result": result})
    if result["ok"]:
        messages.success(
            request,
            _("%(provider)s answered in %(ms)s ms.")
            % {"provider": provider, "ms": result["probe"].milliseconds},
        )
    else:
        messages.error(request, f"{provider}: {result['message']}")
    return redirect("dashboard:providers")


# --- WhatsApp numbers --------------------------------------------------------------------------------
def _webhook_url(request: HttpRequest) -> str:
    # The address Meta calls, as this site is reached (the proxy's host and scheme, see settings).
    return request.build_absolute_uri(reverse("whatsapp-webhook"))


@require_GET
@member_page(read=Role.ADMIN)
def channels(request: HttpRequest, membership: Membership) -> HttpResponse:
    webhook_url = _webhook_url(request)
    return _page(
        request,
        membership,
        "dashboard/channels.html",
        channels=channel_selectors.channel_list(workspace=membership.workspace),
        webhook_url=webhook_url,
        webhook_secure=webhook_url.startswith("https://"),
        cloud=Channel.Kind.CLOUD,
    )


@require_POST
@member_page(write=Role.ADMIN)
def channel_check(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """Ask Meta (`GET /{phone-number-id}`) for the number's display name and quality rating."""
    channel = channel_selectors.channel_get(workspace=membership.workspace, pk=pk)
    result: dict[str, Any] = {"channel": channel}
    try:
        result.update(ok=True, number=channel_services.channel_connection_check(channel=channel))
    except DomainError as exc:
        result.update(ok=False, message=exc.message)
    if _htmx(request):
        return render(request, "dashboard/_channel_check.html", {"result": result})
    if result["ok"]:
        number = result["number"]
        messages.success(
            request,
            _("Connected: %(name)s (%(number)s).")
            % {"name": number.verified_name, "number": number.display_phone_number},
        )
    else:
        messages.error(request, result["message"])
    return redirect("dashboard:channels")


@require_POST
@member_page(write=Role.ADMIN)
def channel_verify_token(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """A new random verify token for the number (audited by the service); paste it into Meta's console."""
    channel = channel_selectors.channel_get(workspace=membership.workspace, pk=pk)
    try:
        channel_services.channel_update(
            channel=channel, data={"verify_token": secrets.token_urlsafe(24)}, actor_id=request.user.pk
        )
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("A new verify token was made: paste it into Meta's console."))
    return HttpResponseRedirect(f"{reverse('dashboard:channels')}#channel-{channel.pk}")


# --- members and roles ---------------------------------------------------------------------------------
def _members_page(
    request: HttpRequest,
    membership: Membership,
    add_form: forms.MemberAddForm | None = None,
    status: int = 200,
) -> HttpResponse:
    response = _page(
        request,
        membership,
        "dashboard/members.html",
        members=account_selectors.workspace_members(workspace=membership.workspace),
        add_form=add_form or forms.MemberAddForm(),
        roles_choices=forms.MemberRoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
    )
    response.status_code = status
    return response


@member_page(write=Role.ADMIN)
def members(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return _members_page(request, membership)
    form = forms.MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = account_services.member_create(acting=membership, **form.cleaned_data)
        except DomainError as exc:
            _form_refused(form, exc)
        else:
            messages.success(request, _("%(login)s can now log in.") % {"login": added.user.get_username()})
            return redirect("dashboard:members")
    return _members_page(request, membership, form, status=400)


@require_POST
@member_page(write=Role.ADMIN)
def member_role(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    target = account_selectors.member_get(workspace=membership.workspace, pk=pk)
    form = forms.MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a role."))
        return redirect("dashboard:members")
    try:
        account_services.member_update_role(
            acting=membership, membership=target, role=form.cleaned_data["role"]
        )
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Role changed."))
    return redirect("dashboard:members")


@require_POST
@member_page(write=Role.ADMIN)
def member_remove(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    target = account_selectors.member_get(workspace=membership.workspace, pk=pk)
    try:
        account_services.member_remove(acting=membership, membership=target)
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Member removed."))
    return redirect("dashboard:members")


# --- the audit log ------------------------------------------------------------------------------------
def _day_start(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the workspace's zone (active during the view: see access.member_page)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


@require_GET
@member_page(read=Role.ADMIN)
def audit(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace = membership.workspace
    actors = [
        (m.user_id, m.user.get_username()) for m in account_selectors.workspace_members(workspace=workspace)
    ]
    form = forms.AuditFilterForm(
        request.GET, actors=actors, actions=audit_selectors.audit_actions(workspace=workspace)
    )
    found = form.cleaned_data if form.is_valid() else {}
    since, until = found.get("since"), found.get("until")
    entries = audit_selectors.audit_list(
        workspace=workspace,
        action=found.get("action", ""),
        actor=found.get("actor"),
        since=_day_start(since) if since else None,
        before=_day_start(until + datetime.timedelta(days=1)) if until else None,
    )
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return _page(request, membership, "dashboard/audit.html", form=form, page=page, query=query.urlencode())
