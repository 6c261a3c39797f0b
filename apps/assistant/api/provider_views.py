from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import MembersReadAdminsWrite
from apps.accounts.selectors import request_workspace
from apps.assistant import providers, services
from apps.assistant.api import provider_serializers as s


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
        providers.providers_configure(
            workspace_id=workspace_id,
            actor_id=request.user.pk,
            fallback_order=data.validated_data.get("fallback_order"),
            providers=data.validated_data.get("providers", []),
        )
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
        row = services.assistant_settings_update(
            workspace_id=request_workspace(request).pk, actor_id=request.user.pk, **data.validated_data
        )
        return Response(s.AssistantSettingsOutput(row).data)
