from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import IsMember, role_required
from apps.accounts.selectors import request_workspace
from apps.campaigns import selectors
from apps.campaigns.api import serializers as s
from apps.campaigns.services import audiences, imports, inbox, recurrence, runner, templates
from apps.conversations import selectors as conversation_selectors
from apps.conversations.api.pagination import paginated_response
from apps.conversations.api.serializers import ContactOutput, MessageOutput
from apps.conversations.services.contacts import PayloadTooLarge
from apps.whatsapp.selectors import channel_get
from chatbot.exceptions import NotFound, ValidationFailed
from chatbot.openapi import errors, paginated
from chatbot.serializers import JSONInput, QueryInput

AgentsReadAdminsWrite = role_required(read=Role.AGENT, write=Role.ADMIN)
AgentsOnly = role_required(read=Role.AGENT, write=Role.AGENT)
INVALID = errors({400: "Invalid input."})
NOT_FOUND = errors({404: "Not found in this workspace."})
CONFLICT = errors({409: "Not allowed in the current state."})
GRAPH = errors(
    {400: "Invalid input, or WhatsApp refused it (template_refused).", 503: "WhatsApp's API is unavailable."}
)


def _filters(serializer: type[QueryInput], request: Request) -> dict[str, Any]:
    data = serializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _valid(serializer: type[JSONInput], request: Request, partial: bool = False) -> dict[str, Any]:
    data = serializer(data=request.data, partial=partial)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _channel(request: Request, pk: int) -> Any:
    try:
        return channel_get(workspace=request_workspace(request), pk=pk)
    except NotFound as exc:  # here a bad field of the body, not a missing URL
        raise ValidationFailed(
            "No such channel in this workspace.", details={"channel": ["Not found."]}
        ) from exc


# --- templates ----------------------------------------------------------------------------------
class TemplateListView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(
        operation_id="templates_list",
        parameters=[s.TemplateFilter],
        responses={200: paginated(s.TemplateOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _filters(s.TemplateFilter, request)
        found = selectors.template_list(
            workspace=request_workspace(request),
            status=filters.get("status", ""),
            channel_id=filters.get("channel"),
        )
        return paginated_response(request, found, s.TemplateOutput)

    @extend_schema(request=s.TemplateInput, responses={201: s.TemplateOutput, **GRAPH, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = _valid(s.TemplateInput, request)
        template = templates.template_create(
            workspace=request_workspace(request),
            channel=_channel(request, data.pop("channel")),
            actor_id=request.user.pk,
            **data,
        )
        return Response(s.TemplateOutput(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.TemplateOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(
            s.TemplateOutput(selectors.template_get(workspace=request_workspace(request), pk=pk)).data
        )

    @extend_schema(responses={204: None, **NOT_FOUND, **GRAPH})
    def delete(self, request: Request, pk: int) -> Response:
        template = selectors.template_get(workspace=request_workspace(request), pk=pk)
        templates.template_delete(template=template, actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TemplateSyncView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(request=s.TemplateSyncInput, responses={200: s.TemplateSyncOutput, **GRAPH})
    def post(self, request: Request) -> Response:
        data = _valid(s.TemplateSyncInput, request)
        report = templates.templates_sync(
            workspace=request_workspace(request), channel=_channel(request, data["channel"])
        )
        return Response(s.TemplateSyncOutput(report).data)


# --- segments -----------------------------------------------------------------------------------
class SegmentListView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(operation_id="segments_list", responses={200: paginated(s.SegmentOutput)})
    def get(self, request: Request) -> Response:
        return paginated_response(
            request, selectors.segment_list(workspace=request_workspace(request)), s.SegmentOutput
        )

    @extend_schema(request=s.SegmentInput, responses={201: s.SegmentOutput, **INVALID, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = _valid(s.SegmentInput, request)
        segment = audiences.segment_create(
            workspace=request_workspace(request),
            name=data["name"],
            filters=dict(data["filters"]),
            user=request.user,
        )
        return Response(s.SegmentOutput(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.SegmentOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(
            s.SegmentOutput(selectors.segment_get(workspace=request_workspace(request), pk=pk)).data
        )

    @extend_schema(
        request=s.SegmentInput, responses={200: s.SegmentOutput, **INVALID, **NOT_FOUND, **CONFLICT}
    )
    def patch(self, request: Request, pk: int) -> Response:
        segment = selectors.segment_get(workspace=request_workspace(request), pk=pk)
        data = _valid(s.SegmentInput, request, partial=True)
        if "filters" in data:
            data["filters"] = dict(data["filters"])
        return Response(s.SegmentOutput(audiences.segment_update(segment=segment, data=data)).data)

    @extend_schema(responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        audiences.segment_delete(segment=selectors.segment_get(workspace=request_workspace(request), pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountView(APIView):
    permission_classes = [AgentsOnly]

    @extend_schema(responses={200: s.SegmentCountOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        workspace = request_workspace(request)
        segment = selectors.segment_get(workspace=workspace, pk=pk)
        return Response(
            s.SegmentCountOutput(selectors.segment_count(workspace=workspace, filters=segment.filters)).data
        )


class SegmentPreviewCountView(APIView):
    """The live count of the audience builder: filters not saved yet (a read, sent as a body)."""

    permission_classes = [AgentsOnly]

    @extend_schema(request=s.SegmentFilters, responses={200: s.SegmentCountOutput, **INVALID})
    def post(self, request: Request) -> Response:
        filters = audiences.segment_filters_clean(_valid(s.SegmentFilters, request))
        counts = selectors.segment_count(workspace=request_workspace(request), filters=filters)
        return Response(s.SegmentCountOutput(counts).data)


# --- audience settings, imports, consent --------------------------------------------------------
class AudienceSettingsView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.AudienceSettingsOutput})
    def get(self, request: Request) -> Response:
        found = audiences.audience_settings(workspace_id=request_workspace(request).pk)
        return Response(s.AudienceSettingsOutput(found).data)

    @extend_schema(request=s.AudienceSettingsInput, responses={200: s.AudienceSettingsOutput, **INVALID})
    def patch(self, request: Request) -> Response:
        data = _valid(s.AudienceSettingsInput, request, partial=True)
        found = audiences.audience_settings_update(workspace_id=request_workspace(request).pk, **data)
        return Response(s.AudienceSettingsOutput(found).data)


class ContactImportListView(APIView):
    permission_classes = [AgentsOnly]
    parser_classes = [MultiPartParser]

    @extend_schema(operation_id="contact_imports_list", responses={200: paginated(s.BackgroundImportOutput)})
    def get(self, request: Request) -> Response:
        found = selectors.contact_import_list(workspace=request_workspace(request))
        return paginated_response(request, found, s.BackgroundImportOutput)

    @extend_schema(
        request={"multipart/form-data": s.BackgroundImportInput},
        responses={
            202: s.BackgroundImportOutput,
            **errors(
                {
                    400: "Not a CSV file with a phone column, or a bad region or tag.",
                    413: "The file is too large.",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.BackgroundImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload: UploadedFile[bytes] = data.validated_data["file"]
        if upload.size is not None and upload.size > settings.CAMPAIGNS_IMPORT_MAX_BYTES:
            raise PayloadTooLarge(
                f"The file is larger than {settings.CAMPAIGNS_IMPORT_MAX_BYTES // (1024 * 1024)} MB."
            )
        tags = data.validated_data.get("tags", "")
        job = imports.contact_import_start(
            workspace=request_workspace(request),
            data=upload.read(settings.CAMPAIGNS_IMPORT_MAX_BYTES + 1),
            filename=upload.name or "",
            region=data.validated_data.get("region", ""),
            tags=tags.replace(";", "|").split("|") if tags else [],
            user=request.user,
        )
        return Response(s.BackgroundImportOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ContactImportDetailView(APIView):
    permission_classes = [AgentsOnly]

    @extend_schema(responses={200: s.BackgroundImportOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        job = selectors.contact_import_get(workspace=request_workspace(request), pk=pk)
        return Response(s.BackgroundImportOutput(job).data)


class ContactConsentView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="contact_consent_list", responses={200: paginated(s.ConsentOutput), **NOT_FOUND}
    )
    def get(self, request: Request, pk: int) -> Response:
        contact = conversation_selectors.contact_get(workspace=request_workspace(request), pk=pk)
        return paginated_response(request, selectors.consent_list(contact=contact), s.ConsentOutput)

    @extend_schema(request=s.ConsentInput, responses={201: ContactOutput, **INVALID, **NOT_FOUND})
    def post(self, request: Request, pk: int) -> Response:
        contact = conversation_selectors.contact_get(workspace=request_workspace(request), pk=pk)
        data = _valid(s.ConsentInput, request)
        contact = audiences.consent_record(contact=contact, **data)
        return Response(ContactOutput(contact).data, status=status.HTTP_201_CREATED)


# --- inbox --------------------------------------------------------------------------------------
class ConversationTemplateSendView(APIView):
    permission_classes = [AgentsOnly]

    @extend_schema(
        request=s.TemplateSendInput,
        responses={201: MessageOutput(many=True), **INVALID, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        workspace = request_workspace(request)
        conversation = conversation_selectors.conversation_get(workspace=workspace, pk=pk)
        data = _valid(s.TemplateSendInput, request)
        try:
            template = selectors.template_get(workspace=workspace, pk=data["template"])
        except NotFound as exc:  # a bad field of the body, not a missing URL
            raise ValidationFailed("No such template.", details={"template": ["Not found."]}) from exc
        queued = inbox.conversation_template_send(
            conversation=conversation,
            user=request.user,
            template=template,
            parameters=data["parameters"],
            header_parameters=data["header_parameters"],
            button_parameters=data["button_parameters"],
        )
        return Response(MessageOutput(queued, many=True).data, status=status.HTTP_201_CREATED)


class ConversationInteractiveSendView(APIView):
    permission_classes = [AgentsOnly]

    @extend_schema(
        request=s.InteractiveSendInput,
        responses={201: MessageOutput(many=True), **INVALID, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        conversation = conversation_selectors.conversation_get(workspace=request_workspace(request), pk=pk)
        data = _valid(s.InteractiveSendInput, request)
        queued = inbox.conversation_interactive_send(
            conversation=conversation, user=request.user, content=dict(data["interactive"])
        )
        return Response(MessageOutput(queued, many=True).data, status=status.HTTP_201_CREATED)


# --- campaigns ----------------------------------------------------------------------------------
AdminsOnly = role_required(read=Role.ADMIN, write=Role.ADMIN)


def _campaign_refs(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """The body's ids as this workspace's objects (a missing one is a bad field: 400)."""
    workspace = request_workspace(request)
    found: dict[str, Any] = {}
    lookups = {
        "template": selectors.template_get,
        "segment": selectors.segment_get,
        "channel": channel_get,
    }
    for name, get in lookups.items():
        if name not in data:
            continue
        if data[name] is None:
            found[name] = None
            continue
        try:
            found[name] = get(workspace=workspace, pk=data[name])
        except NotFound as exc:
            raise ValidationFailed(
                f"No such {name} in this workspace.", details={name: ["Not found."]}
            ) from exc
    if "audience_filters" in data:
        found["audience_filters"] = audiences.segment_filters_clean(dict(data["audience_filters"]))
    for name in ("variables", "header_variables", "button_variables"):
        if name in data:
            found[name] = [dict(item) for item in data[name]]
    if "name" in data:
        found["name"] = data["name"]
    if "header_media_url" in data:
        found["header_media_url"] = data["header_media_url"]
    return found


class CampaignListView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[s.CampaignFilter],
        responses={200: paginated(s.CampaignOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _filters(s.CampaignFilter, request)
        found = selectors.campaign_list(
            workspace=request_workspace(request), status=filters.get("status", "")
        )
        return paginated_response(request, found, s.CampaignOutput)

    @extend_schema(request=s.CampaignInput, responses={201: s.CampaignOutput, **INVALID})
    def post(self, request: Request) -> Response:
        data = _valid(s.CampaignInput, request)
        campaign = runner.campaign_create(
            workspace=request_workspace(request), user=request.user, **_campaign_refs(request, data)
        )
        return Response(s.CampaignOutput(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.CampaignOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(
            s.CampaignOutput(selectors.campaign_get(workspace=request_workspace(request), pk=pk)).data
        )

    @extend_schema(
        request=s.CampaignInput, responses={200: s.CampaignOutput, **INVALID, **NOT_FOUND, **CONFLICT}
    )
    def patch(self, request: Request, pk: int) -> Response:
        campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
        data = _valid(s.CampaignInput, request, partial=True)
        campaign = runner.campaign_update(
            campaign=campaign, user=request.user, **_campaign_refs(request, data)
        )
        return Response(s.CampaignOutput(campaign).data)

    @extend_schema(responses={204: None, **NOT_FOUND, **CONFLICT})
    def delete(self, request: Request, pk: int) -> Response:
        campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
        runner.campaign_delete(campaign=campaign, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignScheduleView(APIView):
    permission_classes = [AdminsOnly]

    @extend_schema(
        request=s.CampaignScheduleInput,
        responses={200: s.CampaignOutput, **INVALID, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        workspace = request_workspace(request)
        campaign = selectors.campaign_get(workspace=workspace, pk=pk)
        data = _valid(s.CampaignScheduleInput, request)
        if data.get("recurrence", "").strip():
            campaign = recurrence.campaign_repeat(
                campaign=campaign, user=request.user, recurrence=data["recurrence"]
            )
            return Response(s.CampaignOutput(campaign).data)
        at = data.get("scheduled_at")
        if at is not None:
            at = runner.local_time(at, workspace.timezone)
        campaign = runner.campaign_schedule(campaign=campaign, user=request.user, scheduled_at=at)
        return Response(s.CampaignOutput(campaign).data)


def _campaign_action(name: str, action: Any) -> type[APIView]:
    class View(APIView):
        permission_classes = [AdminsOnly]

        @extend_schema(
            operation_id=f"campaigns_{name}",
            request=None,
            responses={200: s.CampaignOutput, **NOT_FOUND, **CONFLICT},
        )
        def post(self, request: Request, pk: int) -> Response:
            campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
            return Response(s.CampaignOutput(action(campaign=campaign, user=request.user)).data)

    View.__name__ = View.__qualname__ = f"Campaign{name.title()}View"
    return View


CampaignUnscheduleView = _campaign_action("unschedule", runner.campaign_unschedule)
CampaignPauseView = _campaign_action("pause", runner.campaign_pause)
CampaignResumeView = _campaign_action("resume", runner.campaign_resume)
CampaignCancelView = _campaign_action("cancel", runner.campaign_cancel)


class CampaignFunnelView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.CampaignFunnelOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
        return Response(s.CampaignFunnelOutput(selectors.campaign_funnel(campaign=campaign)).data)


class CampaignPreviewView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(responses={200: s.CampaignPreviewOutput(many=True), **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
        return Response(s.CampaignPreviewOutput(runner.campaign_preview(campaign=campaign), many=True).data)


class CampaignRecipientListView(APIView):
    permission_classes = [AgentsReadAdminsWrite]

    @extend_schema(
        operation_id="campaign_recipients_list",
        parameters=[s.RecipientFilter],
        responses={200: paginated(s.RecipientOutput), **INVALID, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        campaign = selectors.campaign_get(workspace=request_workspace(request), pk=pk)
        stage = _filters(s.RecipientFilter, request).get("stage", "")
        found = selectors.recipient_list(campaign=campaign, stage=stage)
        return paginated_response(request, found, s.RecipientOutput)
