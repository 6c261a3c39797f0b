"""Dashboard pages of the campaigns app: templates, contact imports, segments, and the inbox's template
send. Doors like the API's views: selectors to read, services to write."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Membership, Role
from apps.campaigns import selectors
from apps.campaigns.models import Campaign, Template
from apps.campaigns.services import audiences, imports, inbox, recurrence, runner, templates
from apps.conversations import selectors as conversation_selectors
from apps.dashboard import forms
from apps.dashboard.access import member_page
from apps.dashboard.views import _page, _refused
from apps.whatsapp.selectors import channel_get, channel_list
from chatbot.exceptions import DomainError, NotFound, ValidationFailed

IMPORTS_SHOWN = 20


def template_preview(template: Template) -> str:
    """The body as the customer would read it, with Meta's example values in place of the variables."""
    body: dict[str, Any] = next(
        (c for c in template.components if str(c.get("type", "")).upper() == "BODY"), {}
    )
    example = body.get("example")
    examples = example.get("body_text") if isinstance(example, dict) else None
    values = examples[0] if isinstance(examples, list) and examples else []
    return inbox.template_render(
        template=Template(components=[body]),
        parameters=[str(v) for v in values] if isinstance(values, list) else [],
    )


# --- templates ----------------------------------------------------------------------------------
@require_GET
@member_page(read=Role.AGENT)
def template_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    found = list(selectors.template_list(workspace=membership.workspace))
    rows = [(template, template_preview(template)) for template in found]
    channels = channel_list(workspace=membership.workspace).exclude(waba_id="")
    return _page(request, membership, "dashboard/templates.html", rows=rows, channels=channels)


@require_POST
@member_page(read=Role.AGENT, write=Role.ADMIN)
def template_sync(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        channel = channel_get(workspace=membership.workspace, pk=int(request.POST.get("channel", "0") or 0))
        report = templates.templates_sync(workspace=membership.workspace, channel=channel)
    except (DomainError, ValueError) as exc:
        messages.error(request, exc.message if isinstance(exc, DomainError) else _("Choose a number."))
    else:
        messages.success(
            request,
            _("Synced: %(created)s new, %(updated)s changed, %(gone)s no longer at WhatsApp.")
            % {"created": report.created, "updated": report.updated, "gone": report.gone},
        )
    return redirect("dashboard:templates")


@require_POST
@member_page(write=Role.AGENT)
def conversation_template(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = conversation_selectors.conversation_get(workspace=membership.workspace, pk=pk)
    form = forms.TemplateSendForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a template."))
        return redirect("dashboard:conversation", pk=pk)
    try:
        template = selectors.template_get(workspace=membership.workspace, pk=form.cleaned_data["template"])
        header = form.cleaned_data["header_parameter"]
        inbox.conversation_template_send(
            conversation=conversation,
            user=request.user,
            template=template,
            parameters=form.cleaned_data["parameters"],
            header_parameters=[header] if header else [],
        )
    except NotFound:
        messages.error(request, _("Choose a template."))
    except DomainError as exc:
        _refused(request, exc)
    return redirect("dashboard:conversation", pk=pk)


# --- contact imports ------------------------------------------------------------------------------
def _imports(membership: Membership) -> list[object]:
    return list(selectors.contact_import_list(workspace=membership.workspace)[:IMPORTS_SHOWN])


@member_page(read=Role.AGENT, write=Role.AGENT)
def contact_import(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.ContactImportForm()
    if request.method == "POST":
        form = forms.ContactImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            tags = form.cleaned_data["tags"]
            try:
                imports.contact_import_start(
                    workspace=membership.workspace,
                    data=upload.read(settings.CAMPAIGNS_IMPORT_MAX_BYTES + 1),
                    filename=upload.name or "",
                    region=form.cleaned_data["region"],
                    tags=tags.replace(";", "|").replace(",", "|").split("|") if tags else [],
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Import queued; its progress shows below."))
                return redirect("dashboard:contact-import")
    region = audiences.audience_settings(workspace_id=membership.workspace_id).default_region
    return _page(
        request,
        membership,
        "dashboard/contact_import.html",
        form=form,
        imports=_imports(membership),
        region=region,
    )


@require_GET
@member_page(read=Role.AGENT)
def contact_import_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(request, "dashboard/_imports.html", {"imports": _imports(membership)})


# --- segments ---------------------------------------------------------------------------------------
@member_page(read=Role.AGENT, write=Role.ADMIN)
def segment_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.SegmentForm()
    if request.method == "POST":
        form = forms.SegmentForm(request.POST)
        if form.is_valid() and not form.cleaned_data["name"]:
            form.add_error("name", _("Name the segment to save it."))
        if form.is_valid():
            try:
                audiences.segment_create(
                    workspace=membership.workspace,
                    name=form.cleaned_data["name"],
                    filters=form.filters(),
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("dashboard:segments")
    rows = [
        (segment, selectors.segment_count(workspace=membership.workspace, filters=segment.filters))
        for segment in selectors.segment_list(workspace=membership.workspace)
    ]
    return _page(request, membership, "dashboard/segments.html", form=form, rows=rows)


@require_POST
@member_page(read=Role.AGENT, write=Role.AGENT)
def segment_count(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The builder's live count (htmx posts the form on every change): a read, though it is a POST."""
    form = forms.SegmentForm(request.POST)
    counts = (
        selectors.segment_count(workspace=membership.workspace, filters=form.filters())
        if form.is_valid()
        else None
    )
    return render(request, "dashboard/_segment_count.html", {"counts": counts})


# --- campaigns ------------------------------------------------------------------------------------
RECIPIENTS_SHOWN = 50


def _campaign_form(membership: Membership, data: Any = None) -> forms.CampaignForm:
    workspace = membership.workspace
    return forms.CampaignForm(
        data,
        templates=selectors.template_list(workspace=workspace).filter(status__in=inbox.SENDABLE),
        channels=channel_list(workspace=workspace),
        segments=selectors.segment_list(workspace=workspace),
    )


def _campaign_refs(membership: Membership, form: forms.CampaignForm) -> dict[str, Any]:
    workspace = membership.workspace
    segment_id = form.cleaned_data["segment"]
    return {
        "name": form.cleaned_data["name"],
        "template": selectors.template_get(workspace=workspace, pk=form.cleaned_data["template"]),
        "channel": channel_get(workspace=workspace, pk=form.cleaned_data["channel"]),
        "segment": selectors.segment_get(workspace=workspace, pk=segment_id) if segment_id else None,
        "variables": form.variables(),
        "header_variables": form.header_variables(),
        "button_variables": form.button_variables(),
        "header_media_url": form.cleaned_data.get("header_media_url") or "",
    }


@member_page(read=Role.AGENT, write=Role.ADMIN)
def campaign_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = _campaign_form(membership)
    if request.method == "POST":
        form = _campaign_form(membership, request.POST)
        if form.is_valid():
            try:
                campaign = runner.campaign_create(
                    workspace=membership.workspace, user=request.user, **_campaign_refs(membership, form)
                )
            except (DomainError, NotFound) as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Draft saved: check the preview, then send or schedule it."))
                return redirect("dashboard:campaign", pk=campaign.pk)
    campaigns = list(selectors.campaign_list(workspace=membership.workspace)[:100])
    return _page(request, membership, "dashboard/campaigns.html", form=form, campaigns=campaigns)


def _campaign_context(campaign: Any, stage: str) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "funnel": selectors.campaign_funnel(campaign=campaign),
        "stage": stage,
        "recipients": list(selectors.recipient_list(campaign=campaign, stage=stage)[:RECIPIENTS_SHOWN]),
    }


def _stage(request: HttpRequest) -> str:
    stage = request.GET.get("stage", "")
    return stage if stage in selectors.RECIPIENT_STAGES else ""


@require_GET
@member_page(read=Role.AGENT)
def campaign_page(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    campaign = selectors.campaign_get(workspace=membership.workspace, pk=pk)
    return _page(
        request,
        membership,
        "dashboard/campaign.html",
        preview=runner.campaign_preview(campaign=campaign)
        if campaign.status == Campaign.Status.DRAFT
        else [],
        schedule_form=forms.CampaignScheduleForm(),
        time_zone=membership.workspace.timezone,
        **_campaign_context(campaign, _stage(request)),
    )


@require_GET
@member_page(read=Role.AGENT)
def campaign_funnel(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """The live part of the campaign page (status, funnel, recipients), polled while it runs."""
    campaign = selectors.campaign_get(workspace=membership.workspace, pk=pk)
    return render(request, "dashboard/_campaign_live.html", _campaign_context(campaign, _stage(request)))


@require_GET
@member_page(read=Role.AGENT)
def campaign_recipients_csv(request: HttpRequest, membership: Membership, pk: int) -> StreamingHttpResponse:
    """Every recipient with their stage, streamed (a 100,000-row campaign never sits in memory)."""
    campaign = selectors.campaign_get(workspace=membership.workspace, pk=pk)
    rows = selectors.recipient_list(campaign=campaign, stage=_stage(request)).iterator(chunk_size=2000)
    header = [
        "contact_id",
        "name",
        "wa_id",
        "state",
        "skip_reason",
        "message_status",
        "error_code",
        "replied",
    ]

    def lines() -> Any:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for r in rows:
            message = r.message
            writer.writerow(
                [
                    r.contact_id,
                    _csv_safe(r.contact.display_name),
                    r.contact.wa_id,
                    r.state,
                    r.skip_reason,
                    message.status if message else "",
                    (message.error_code or "") if message else "",
                    "yes" if getattr(r, "replied", False) else "",
                ]
            )
            yield out.getvalue()
            out.seek(0)
            out.truncate()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    return response


def _csv_safe(value: str) -> str:
    # A name starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


CAMPAIGN_ACTIONS = {
    "pause": runner.campaign_pause,
    "resume": runner.campaign_resume,
    "cancel": runner.campaign_cancel,
    "unschedule": runner.campaign_unschedule,
}


@require_POST
@member_page(read=Role.AGENT, write=Role.ADMIN)
def campaign_action(request: HttpRequest, membership: Membership, pk: int, action: str) -> HttpResponse:
    campaign = selectors.campaign_get(workspace=membership.workspace, pk=pk)
    try:
        if action == "schedule":
            form = forms.CampaignScheduleForm(request.POST)
            if not form.is_valid():
                raise ValidationFailed(_("Give the time as YYYY-MM-DD HH:MM."))
            at = form.cleaned_data["scheduled_at"]
            if form.cleaned_data["recurrence"].strip():
                recurrence.campaign_repeat(
                    campaign=campaign, user=request.user, recurrence=form.cleaned_data["recurrence"]
                )
                return redirect("dashboard:campaign", pk=pk)
            if at is not None:  # the wall-clock time as typed, read in the workspace's zone
                at = runner.local_time(timezone.make_naive(at), membership.workspace.timezone)
            runner.campaign_schedule(campaign=campaign, user=request.user, scheduled_at=at)
        elif action in CAMPAIGN_ACTIONS:
            CAMPAIGN_ACTIONS[action](campaign=campaign, user=request.user)
        elif action == "delete":
            runner.campaign_delete(campaign=campaign, user=request.user)
            return redirect("dashboard:campaigns")
        else:
            raise NotFound("No such action.")
    except DomainError as exc:
        _refused(request, exc)
    return redirect("dashboard:campaign", pk=pk)
