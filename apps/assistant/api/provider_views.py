from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import MembersReadAdminsWrite
from apps.accounts.selectors import request_workspace
from apps.assistant import providers, services
from apps.assistant.api import provider_serializers as s
from apps.audit.services import audited


class ProvidersView(APIView):
    """The workspace's LLM providers: configuration (never keys), breaker states, effective fallback order."""

    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(responses={200: s.ProvidersOutput}, operation_id="business_providers_retrieve")
    def get(self, request: Request) -> Response:
        overview = providers.providers_overview(workspace_id=request_workspace(request).pk)
        return Response(s.ProvidersOutput(overview).data)

    @extend_schema(
        request=s.ProvidersInput, responses={200: s.ProvidersOutput}, operation_id="business_providers_update"
    )
    def put(self, request: Request) -> Response:
        data = s.ProvidersInput(data=request.data)
        data.is_valid(raise_exception=True)
        workspace_id = request_workspace(request).pk
        with audited(
            request,
            workspace_id=workspace_id,
            action="providers.update",
            target=("assistant.providerconfig", workspace_id),
        ) as entry:
            change = {
                "fallback_order": data.validated_data.get("fallback_order"),
                "providers": data.validated_data.get("providers", []),
            }
            providers.providers_configure(workspace_id=workspace_id, **change)
            entry.details.update(providers.providers_audit_details(**change))
        return Response(s.ProvidersOutput(providers.providers_overview(workspace_id=workspace_id)).data)


class AssistantSettingsView(APIView):
    """How the workspace's replies are produced: on or off, temperature, length, time limits, cache."""

    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(responses={200: s.AssistantSettingsOutput}, operation_id="business_assistant_retrieve")
    def get(self, request: Request) -> Response:
        row = services.assistant_settings_get_or_create(workspace_id=request_workspace(request).pk)
        return Response(s.AssistantSettingsOutput(row).data)

    @extend_schema(
        request=s.AssistantSettingsInput,
        responses={200: s.AssistantSettingsOutput},
        operation_id="business_assistant_update",
    )
    def put(self, request: Request) -> Response:
        data = s.AssistantSettingsInput(data=request.data)
        data.is_valid(raise_exception=True)
        workspace_id = request_workspace(request).pk
        with audited(
            request,
            workspace_id=workspace_id,
            action="assistant.update",
            target=("assistant.assistantsettings", workspace_id),
        ) as entry:
            row = services.assistant_settings_update(workspace_id=workspace_id, **data.validated_data)
            entry.details.update(data.validated_data)
        return Response(s.AssistantSettingsOutput(row).data)
