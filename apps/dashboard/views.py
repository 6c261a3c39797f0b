"""Dashboard pages: doors like the API's views. They read selectors, call services, render HTML."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import selectors as account_selectors
from apps.accounts.forms import ThrottledAuthenticationForm
from apps.accounts.models import Membership, Role
from apps.alerts import selectors as alert_selectors
from apps.alerts import services as alert_services
from apps.alerts.models import Alert
from apps.assistant import providers
from apps.assistant import selectors as assistant_selectors
from apps.assistant import services as assistant_services
from apps.assistant.models import KnowledgeEntry
from apps.conversations import selectors
from apps.conversations.models import Message
from apps.conversations.services import outbound
from apps.dashboard import forms
from apps.dashboard.access import member_page, roles
from apps.live.selectors import live_last_id
from apps.whatsapp import selectors as channel_selectors
from chatbot.exceptions import DomainError

PAGE_SIZE = 100


NAV = {
    "conversation": "inbox",
    "canned_replies": "inbox",
    "business": "settings",
    "knowledge": "settings",
    "knowledge_edit": "settings",
    "providers": "settings",
    "channels": "settings",
    "members": "settings",
    "audit": "settings",
    "contact_import": "segments",
    "alert_rules": "alerts",
    "alert_rule_edit": "alerts",
    "campaign": "campaigns",
}


def _page(request: HttpRequest, membership: Membership, template: str, **context: Any) -> HttpResponse:
    page = template.removeprefix("dashboard/").removesuffix(".html")
    context.update(
        membership=membership,
        nav=NAV.get(page, page),
        live_url=settings.DASHBOARD_WS_URL or "/ws/live/",
        live_after=live_last_id(workspace=membership.workspace),
        open_alerts=alert_selectors.alert_open_count(workspace=membership.workspace),
        waiting=selectors.waiting_count(workspace=membership.workspace),
        **roles(membership),
    )
    return render(request, template, context)


def _refused(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, exc.message)


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after:  # refused before the password was checked: say so in HTTP too
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


def _form_refused(form: BaseForm, exc: DomainError) -> None:
    """Show a service's refusal on the form: its message, then each problem of its details
    ({"field": ["problem", ...]})."""
    form.add_error(None, exc.message)
    details = exc.details if isinstance(exc.details, dict) else {}
    for problems in details.values():
        for problem in problems if isinstance(problems, list) else [problems]:
            form.add_error(None, str(problem))


def home(request: HttpRequest) -> HttpResponseRedirect:
    return redirect("dashboard:inbox")


# --- outbound queue -------------------------------------------------------------------------
def _queue(request: HttpRequest, membership: Membership) -> tuple[forms.QueueFilterForm, QuerySet[Message]]:
    form = forms.QueueFilterForm(request.GET)
    state = form.cleaned_data.get("state", "") if form.is_valid() else ""
    rows = selectors.queue_list(workspace=membership.workspace, state=state)
    return form, rows.select_related("contact")[:PAGE_SIZE]


@require_GET
@member_page()
def queue(request: HttpRequest, membership: Membership) -> HttpResponse:
    form, rows = _queue(request, membership)
    return _page(request, membership, "dashboard/queue.html", form=form, rows=rows)


@require_GET
@member_page()
def queue_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    _, rows = _queue(request, membership)
    return render(request, "dashboard/_queue_list.html", {"rows": rows, **roles(membership)})


@require_POST
@member_page(write=Role.SUPERVISOR)
def queue_action(request: HttpRequest, membership: Membership, pk: int, action: str) -> HttpResponse:
    row = selectors.queue_item_get(workspace=membership.workspace, pk=pk)
    act = {"cancel": outbound.message_cancel, "retry": outbound.message_retry_now}.get(action)
    if act is None:
        return HttpResponse(status=404)
    try:
        act(message=row)
    except DomainError as exc:
        _refused(request, exc)
    return HttpResponseRedirect(f"{reverse('dashboard:queue')}?{request.GET.urlencode()}")


# --- alerts -----------------------------------------------------------------------------------
ALERT_ACTIONS = {"acknowledge": alert_services.alert_acknowledge, "resolve": alert_services.alert_resolve}


def _alerts(request: HttpRequest, membership: Membership) -> tuple[forms.AlertFilterForm, QuerySet[Alert]]:
    form = forms.AlertFilterForm(request.GET)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    rows = alert_selectors.alert_list(workspace=membership.workspace, **filters)
    return form, rows[:PAGE_SIZE]


@require_GET
@member_page()
def alerts(request: HttpRequest, membership: Membership) -> HttpResponse:
    form, rows = _alerts(request, membership)
    return _page(
        request, membership, "dashboard/alerts.html", form=form, rows=rows, members=_members(membership)
    )


def _members(membership: Membership) -> list[tuple[int, str]]:
    """Whom an alert may be assigned to: the workspace's members."""
    found = account_selectors.workspace_members(workspace=membership.workspace).select_related("user")
    return [(m.user_id, m.user.get_username()) for m in found]


@require_GET
@member_page()
def alerts_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    _, rows = _alerts(request, membership)
    context = {"rows": rows, "members": _members(membership), **roles(membership)}
    return render(request, "dashboard/_alerts_list.html", context)


@require_POST
@member_page(write=Role.AGENT)
def alert_action(request: HttpRequest, membership: Membership, pk: int, action: str) -> HttpResponse:
    alert = alert_selectors.alert_get(workspace=membership.workspace, pk=pk)
    act = ALERT_ACTIONS.get(action)
    if act is None and action != "assign":
        return HttpResponse(status=404)
    try:
        if action == "assign":  # to a member, or to nobody (empty)
            raw = request.POST.get("assignee", "")
            assignee = int(raw) if raw.isdigit() else None
            alert_services.alert_assign(alert=alert, assignee_id=assignee, user_id=int(request.user.pk or 0))
        elif act is not None:
            act(alert=alert, user_id=int(request.user.pk or 0))
    except DomainError as exc:
        _refused(request, exc)
    return HttpResponseRedirect(f"{reverse('dashboard:alerts')}?{request.GET.urlencode()}")


# --- alert rules (supervisors read, admins write: as the API) -------------------------------------
def _rule_form(membership: Membership, data: Any = None, **kwargs: Any) -> forms.AlertRuleForm:
    channels = [
        (channel.pk, str(channel))
        for channel in channel_selectors.channel_list(workspace=membership.workspace)
    ]
    return forms.AlertRuleForm(data, channels=channels, **kwargs)


@require_GET
@member_page(read=Role.SUPERVISOR)
def alert_rules(request: HttpRequest, membership: Membership) -> HttpResponse:
    rules = alert_selectors.alert_rule_list(workspace=membership.workspace)
    return _page(request, membership, "dashboard/alert_rules.html", rules=rules)


@member_page(read=Role.ADMIN, write=Role.ADMIN)
def alert_rule_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = _rule_form(membership, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            alert_services.alert_rule_create(
                workspace_id=membership.workspace_id, actor_id=request.user.pk, **form.rule_fields()
            )
        except DomainError as exc:
            _form_refused(form, exc)
        else:
            messages.success(request, _("Alert rule saved."))
            return redirect("dashboard:alert-rules")
    return _page(request, membership, "dashboard/alert_rule_edit.html", form=form, rule=None)


@member_page(read=Role.SUPERVISOR, write=Role.ADMIN)
def alert_rule_edit(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    rule = alert_selectors.alert_rule_get(workspace=membership.workspace, pk=pk)
    if request.method == "POST":
        form = _rule_form(membership, request.POST)
        if form.is_valid():
            try:
                alert_services.alert_rule_update(rule=rule, actor_id=request.user.pk, **form.rule_fields())
            except DomainError as exc:
                _form_refused(form, exc)
            else:
                messages.success(request, _("Alert rule saved."))
                return redirect("dashboard:alert-rules")
    else:
        form = _rule_form(membership, initial=forms.AlertRuleForm.initial_for(rule))
    return _page(request, membership, "dashboard/alert_rule_edit.html", form=form, rule=rule)


@require_POST
@member_page(write=Role.ADMIN)
def alert_rule_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    rule = alert_selectors.alert_rule_get(workspace=membership.workspace, pk=pk)
    alert_services.alert_rule_delete(rule=rule, actor_id=request.user.pk)
    messages.success(request, _("Alert rule deleted."))
    return redirect("dashboard:alert-rules")


# --- business profile, in sections -------------------------------------------------------------
def _section_refused(form: forms.ProfileSectionForm, exc: DomainError) -> None:
    """A service's refusal beside the field it names ({"field": ["problem", ...]}), else on the form."""
    details = exc.details if isinstance(exc.details, dict) else {}
    placed = False
    for name, problems in details.items():
        for problem in problems if isinstance(problems, list) else [problems]:
            form.add_error(form.field_for(str(name), str(problem)), str(problem))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _business(
    request: HttpRequest, membership: Membership, *, bound: forms.ProfileSectionForm | None = None
) -> HttpResponse:
    profile = assistant_services.profile_get_or_create(workspace_id=membership.workspace_id)
    sections = [
        bound if bound is not None and bound.section == name else form(initial=form.initial_from(profile))
        for name, form in forms.PROFILE_SECTIONS.items()
    ]
    response = _page(
        request,
        membership,
        "dashboard/business.html",
        sections=sections,
        knowledge_count=assistant_selectors.knowledge_list(workspace=membership.workspace).count(),
    )
    if bound is not None:
        response.status_code = 400
    return response


@member_page(write=Role.ADMIN)
def business(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return _business(request, membership)
    section = forms.PROFILE_SECTIONS.get(request.POST.get("section", ""))
    if section is None:
        return HttpResponse(_("Unknown section of the business profile."), status=400)
    form = section(request.POST)
    if form.is_valid():
        try:
            assistant_services.profile_update(workspace_id=membership.workspace_id, **form.cleaned_data)
        except DomainError as exc:
            _section_refused(form, exc)
        else:
            messages.success(request, _("%(section)s saved.") % {"section": form.title})
            return HttpResponseRedirect(f"{reverse('dashboard:business')}#section-{form.section}")
    return _business(request, membership, bound=form)


# --- knowledge (FAQ and documents) -------------------------------------------------------------
KNOWLEDGE_PAGE_SIZE = 25


def _knowledge(
    request: HttpRequest,
    membership: Membership,
    *,
    knowledge_form: forms.KnowledgeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = membership.workspace
    filters = forms.KnowledgeFilterForm(
        request.GET, languages=assistant_selectors.knowledge_languages(workspace=workspace)
    )
    found = filters.cleaned_data if filters.is_valid() else {}
    entries = assistant_selectors.knowledge_list(
        workspace=workspace,
        q=found.get("q", ""),
        language=found.get("language", ""),
        kind=found.get("kind", ""),
    )
    page = Paginator(entries, KNOWLEDGE_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    response = _page(
        request,
        membership,
        "dashboard/knowledge.html",
        filters=filters,
        page=page,
        query=query.urlencode(),
        knowledge_form=knowledge_form or forms.KnowledgeForm(),
        import_form=forms.KnowledgeImportForm(),
    )
    response.status_code = status
    return response


@member_page(write=Role.SUPERVISOR)
def knowledge(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method != "POST":
        return _knowledge(request, membership)
    form = forms.KnowledgeForm(request.POST)
    if form.is_valid():
        try:
            assistant_services.knowledge_create(workspace_id=membership.workspace_id, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Knowledge entry added."))
            return redirect("dashboard:knowledge")
    return _knowledge(request, membership, knowledge_form=form, status=400)


@require_GET
@member_page()
def knowledge_example(request: HttpRequest, membership: Membership) -> HttpResponse:
    """An example import file with the columns the import reads, in Spanish and English."""
    response = HttpResponse(
        assistant_services.knowledge_import_example(), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="faq-example.csv"'
    return response


def _entry(membership: Membership, pk: int) -> KnowledgeEntry:
    return assistant_selectors.knowledge_get(workspace=membership.workspace, pk=pk)


@member_page(read=Role.SUPERVISOR, write=Role.SUPERVISOR)
def knowledge_edit(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    entry = _entry(membership, pk)
    if request.method == "POST":
        form = forms.KnowledgeForm(request.POST)
        if form.is_valid():
            try:
                assistant_services.knowledge_update(entry=entry, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Knowledge entry saved."))
                return redirect("dashboard:knowledge")
    else:
        fields = ("kind", "title", "content", "language", "is_active")
        form = forms.KnowledgeForm(initial={name: getattr(entry, name) for name in fields})
    return _page(request, membership, "dashboard/knowledge_edit.html", entry=entry, form=form)


@require_POST
@member_page(write=Role.SUPERVISOR)
def knowledge_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    assistant_services.knowledge_delete(entry=_entry(membership, pk), actor_id=request.user.pk)
    messages.success(request, _("Knowledge entry deleted."))
    return redirect("dashboard:knowledge")


@require_POST
@member_page(write=Role.SUPERVISOR)
def knowledge_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.KnowledgeImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a file to import."))
        return redirect("dashboard:knowledge")
    upload = form.cleaned_data["file"]
    try:
        report = assistant_services.knowledge_import(
            workspace_id=membership.workspace_id,
            filename=upload.name or "",
            content=upload.read(assistant_services.MAX_IMPORT_BYTES + 1),
        )
    except DomainError as exc:
        _refused(request, exc)
        return redirect("dashboard:knowledge")
    messages.success(
        request,
        _("Imported: %(created)s new, %(updated)s updated, %(errors)s rows skipped.")
        % {"created": report.created, "updated": report.updated, "errors": len(report.errors)},
    )
    for error in report.errors[:20]:
        messages.warning(
            request, _("Row %(row)s: %(message)s") % {"row": error.row, "message": error.message}
        )
    return redirect("dashboard:knowledge")


# --- LLM providers --------------------------------------------------------------------------
def _provider_initial(state: providers.ProviderState) -> dict[str, Any]:
    return {"enabled": state.enabled, "model": state.model, "base_url": state.base_url}


@member_page(write=Role.ADMIN)
def business_providers(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace_id = membership.workspace_id
    overview = providers.providers_overview(workspace_id=workspace_id)
    states = overview["providers"]
    if request.method == "POST":
        order_form = forms.ProvidersOrderForm(request.POST)
        provider_forms = [
            forms.ProviderForm(request.POST, prefix=state.provider, initial=_provider_initial(state))
            for state in states
        ]
        if order_form.is_valid() and all(form.is_valid() for form in provider_forms):
            change: dict[str, Any] = {
                "fallback_order": order_form.cleaned_data["fallback_order"],
                # Untouched providers are left out, so no row is created for one nobody configured.
                "providers": [
                    form.change(state.provider)
                    for form, state in zip(provider_forms, states, strict=True)
                    if form.has_changed()
                ],
            }
            try:
                providers.providers_configure(workspace_id=workspace_id, actor_id=request.user.pk, **change)
            except DomainError as exc:
                order_form.add_error(None, exc.message)
            else:
                messages.success(request, _("Providers saved."))
                return redirect("dashboard:providers")
    else:
        order_form = forms.ProvidersOrderForm(
            initial={"fallback_order": ", ".join(overview["configured_order"])}
        )
        provider_forms = [
            forms.ProviderForm(prefix=state.provider, initial=_provider_initial(state)) for state in states
        ]
    return _providers_page(request, membership, overview, order_form, provider_forms)


def _providers_page(
    request: HttpRequest,
    membership: Membership,
    overview: dict[str, Any],
    order_form: forms.ProvidersOrderForm,
    provider_forms: list[forms.ProviderForm],
    assistant_form: forms.AssistantSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    if assistant_form is None:
        row = assistant_services.assistant_settings_get_or_create(workspace_id=membership.workspace_id)
        assistant_form = forms.AssistantSettingsForm(initial=forms.AssistantSettingsForm.initial_from(row))
    response = _page(
        request,
        membership,
        "dashboard/providers.html",
        order_form=order_form,
        assistant_form=assistant_form,
        effective_order=overview["fallback_order"],
        rows=list(zip(overview["providers"], provider_forms, strict=True)),
    )
    response.status_code = status
    return response


@require_POST
@member_page(write=Role.ADMIN)
def assistant_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    workspace_id = membership.workspace_id
    form = forms.AssistantSettingsForm(request.POST)
    if form.is_valid():
        try:
            assistant_services.assistant_settings_update(
                workspace_id=workspace_id, actor_id=request.user.pk, **form.cleaned_data
            )
        except DomainError as exc:
            _form_refused(form, exc)
        else:
            messages.success(request, _("Reply settings saved."))
            return redirect("dashboard:providers")
    overview = providers.providers_overview(workspace_id=workspace_id)
    order_form = forms.ProvidersOrderForm(initial={"fallback_order": ", ".join(overview["configured_order"])})
    provider_forms = [
        forms.ProviderForm(prefix=state.provider, initial=_provider_initial(state))
        for state in overview["providers"]
    ]
    return _providers_page(request, membership, overview, order_form, provider_forms, form, status=400)
