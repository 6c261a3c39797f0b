from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import IsMember, role_required
from apps.accounts.selectors import request_workspace
from apps.alerts import selectors, services
from apps.alerts.api import serializers as s
from apps.alerts.models import Alert, AlertRule
from chatbot.openapi import errors, paginated
from chatbot.pagination import Pagination
from chatbot.serializers import QueryInput

# Rules hold where notifications go (addresses, a webhook URL the platform calls): supervisors read
# them, admins change them.
SupervisorsReadAdminsWrite = role_required(read=Role.SUPERVISOR, write=Role.ADMIN)
INVALID = errors({400: "Invalid input."})
NOT_FOUND = errors({404: "Not found in this workspace."})
CONFLICT = errors({409: "Not allowed in the alert's current state."})


def _valid(serializer: type[QueryInput], data: Any, *, partial: bool = False) -> dict[str, Any]:
    checked = serializer(data=data, partial=partial)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


def _paginated(request: Request, rows: Any, output: Any) -> Response:
    paginator = Pagination()
    page: list[Any] | None = paginator.paginate_queryset(rows, request)
    return paginator.get_paginated_response(output(page, many=True).data)


# --- rules ------------------------------------------------------------------------------------------
def _rule(request: Request, pk: int) -> AlertRule:
    return selectors.alert_rule_get(workspace=request_workspace(request), pk=pk)


class AlertRuleListView(APIView):
    permission_classes = [SupervisorsReadAdminsWrite]

    @extend_schema(
        operation_id="alert_rules_list",
        parameters=[s.AlertRuleFilter],
        responses={200: paginated(s.AlertRuleOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _valid(s.AlertRuleFilter, request.query_params)
        active = filters.pop("is_active", None)
        rules = selectors.alert_rule_list(
            workspace=request_workspace(request),
            is_active=None if active is None else active == "true",
            **filters,
        )
        return _paginated(request, rules, s.AlertRuleOutput)

    @extend_schema(
        operation_id="alert_rules_create",
        request=s.AlertRuleInput,
        responses={201: s.AlertRuleOutput, **INVALID},
    )
    def post(self, request: Request) -> Response:
        fields = _valid(s.AlertRuleInput, request.data)
        rule = services.alert_rule_create(
            workspace_id=request_workspace(request).pk, actor_id=request.user.pk, **fields
        )
        return Response(s.AlertRuleOutput(rule).data, status=status.HTTP_201_CREATED)


class AlertRuleDetailView(APIView):
    permission_classes = [SupervisorsReadAdminsWrite]

    @extend_schema(operation_id="alert_rules_retrieve", responses={200: s.AlertRuleOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.AlertRuleOutput(_rule(request, pk)).data)

    @extend_schema(
        operation_id="alert_rules_partial_update",
        request=s.AlertRuleUpdateInput,
        responses={200: s.AlertRuleOutput, **INVALID, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        rule = _rule(request, pk)
        fields = _valid(s.AlertRuleUpdateInput, request.data, partial=True)
        services.alert_rule_update(rule=rule, actor_id=request.user.pk, **fields)
        return Response(s.AlertRuleOutput(_rule(request, pk)).data)

    @extend_schema(operation_id="alert_rules_destroy", responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        services.alert_rule_delete(rule=_rule(request, pk), actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- alerts -----------------------------------------------------------------------------------------
def _alert(request: Request, pk: int) -> Alert:
    return selectors.alert_get(workspace=request_workspace(request), pk=pk)


class AlertListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="alerts_list",
        parameters=[s.AlertFilter],
        responses={200: paginated(s.AlertOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _valid(s.AlertFilter, request.query_params)
        alerts = selectors.alert_list(workspace=request_workspace(request), **filters)
        return _paginated(request, alerts, s.AlertOutput)


class AlertDetailView(APIView):
    permission_classes = [IsMember]

    @extend_schema(operation_id="alerts_retrieve", responses={200: s.AlertOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.AlertOutput(_alert(request, pk)).data)


class AlertAcknowledgeView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="alerts_acknowledge",
        request=None,
        responses={200: s.AlertOutput, **NOT_FOUND, **CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        alert = services.alert_acknowledge(alert=_alert(request, pk), user_id=int(request.user.pk or 0))
        return Response(s.AlertOutput(_alert(request, alert.pk)).data)


class AlertResolveView(APIView):
    permission_classes = [IsMember]

    @extend_schema(operation_id="alerts_resolve", request=None, responses={200: s.AlertOutput, **NOT_FOUND})
    def post(self, request: Request, pk: int) -> Response:
        alert = services.alert_resolve(alert=_alert(request, pk), user_id=int(request.user.pk or 0))
        return Response(s.AlertOutput(_alert(request, alert.pk)).data)


class AlertAssignView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="alerts_assign",
        request=s.AlertAssignInput,
        responses={200: s.AlertOutput, **INVALID, **NOT_FOUND},
    )
    def post(self, request: Request, pk: int) -> Response:
        alert = _alert(request, pk)
        data = _valid(s.AlertAssignInput, request.data)
        services.alert_assign(alert=alert, assignee_id=data["assignee"], user_id=int(request.user.pk or 0))
        return Response(s.AlertOutput(_alert(request, pk)).data)
