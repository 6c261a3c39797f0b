"""Read-only figures over a range of days: `?start=YYYY-MM-DD&end=YYYY-MM-DD&channel=<id>` on every one."""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import role_required
from apps.accounts.selectors import request_workspace
from apps.analytics import export, selectors
from apps.analytics.api import serializers as s
from apps.analytics.selectors import Period
from apps.conversations.api.media_types import JSONErrorsNegotiation
from chatbot.exceptions import NotFound
from chatbot.openapi import errors

# Figures of the whole business, costs included: supervisors and above.
Supervisors = role_required(read=Role.SUPERVISOR, write=Role.ADMIN)
INVALID = errors({400: "Invalid range or channel."})
PLANNED: list[str] = []  # figures announced but not built yet (none now)


def _period(request: Request) -> Period:
    checked = s.PeriodFilter(data=request.query_params)
    checked.is_valid(raise_exception=True)
    filters = checked.validated_data
    return selectors.period_build(
        workspace=request_workspace(request),
        start=filters.get("start"),
        end=filters.get("end"),
        channel_id=filters.get("channel"),
    )


def _described(period: Period) -> dict[str, Any]:
    return {
        "start": period.start,
        "end": period.end,
        "timezone": period.zone.key,
        "channel": period.channel_id,
    }


def _figures(
    selector: Callable[..., dict[str, Any]],
    output: type[s._AnalyticsWithPeriod],
    operation_id: str,
    summary: str,
) -> type[APIView]:
    class FiguresView(APIView):
        permission_classes = [Supervisors]

        @extend_schema(
            operation_id=operation_id,
            summary=summary,
            parameters=[s.PeriodFilter],
            responses={200: output, **INVALID},
        )
        def get(self, request: Request) -> Response:
            period = _period(request)
            return Response(output({"period": _described(period), **selector(period=period)}).data)

    FiguresView.__name__ = FiguresView.__qualname__ = f"{output.__name__.removesuffix('Output')}View"
    return FiguresView


MessagesView = _figures(
    selectors.message_volume,
    s.AnalyticsMessagesOutput,
    "analytics_messages",
    "Messages in and out by local day and by hour of day.",
)
ConversationsView = _figures(
    selectors.conversation_counts,
    s.AnalyticsConversationsOutput,
    "analytics_conversations",
    "Conversations opened, handed to a person and closed, by day.",
)
ResponseTimesView = _figures(
    selectors.response_times,
    s.AnalyticsResponseTimesOutput,
    "analytics_response_times",
    "First-response time of the bot and of people, resolution time (p50, p90), share the bot answered alone.",
)
DeliveryView = _figures(
    selectors.delivery_funnel,
    s.AnalyticsDeliveryOutput,
    "analytics_delivery",
    "Delivery funnel of outbound messages: sent, delivered, read, failed by error code.",
)
LLMView = _figures(
    selectors.llm_usage,
    s.AnalyticsLLMOutput,
    "analytics_llm",
    "Replies, tokens, cost and latency per provider and model; cache hit and fallback rates.",
)
AlertsView = _figures(
    selectors.alerts_by_severity,
    s.AnalyticsAlertsOutput,
    "analytics_alerts",
    "Alerts raised, by severity and state.",
)
OptOutsView = _figures(
    selectors.opt_outs,
    s.AnalyticsOptOutsOutput,
    "analytics_opt_outs",
    "Marketing opt-outs by day and by source.",
)

CampaignsView = _figures(
    selectors.campaign_funnels,
    s.AnalyticsCampaignsOutput,
    "analytics_campaigns",
    "Each campaign started in the period: recipients, skipped, sent, delivered, read, replied, failed, cancelled.",
)


class IndexView(APIView):
    permission_classes = [Supervisors]

    @extend_schema(
        operation_id="analytics_index",
        summary="The period resolved, the channels to narrow it to, the CSV tables, what is planned.",
        description=(
            "Every analytics endpoint takes `start` and `end` (days in the workspace's time zone, both "
            "included; default: the last 30 days) and `channel`. `planned` names figures not built yet."
        ),
        parameters=[s.PeriodFilter],
        responses={200: s.AnalyticsIndexOutput, **INVALID},
    )
    def get(self, request: Request) -> Response:
        period = _period(request)
        channels = selectors.period_channels(workspace=request_workspace(request)).values("id", "name")
        return Response(
            s.AnalyticsIndexOutput(
                {
                    "period": _described(period),
                    "channels": list(channels),
                    "tables": list(export.TABLES),
                    "planned": PLANNED,
                }
            ).data
        )


class ExportView(APIView):
    permission_classes = [Supervisors]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        operation_id="analytics_export",
        summary="One table as CSV (a header row, then the rows the JSON answer holds).",
        parameters=[
            s.PeriodFilter,
            OpenApiParameter("table", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(export.TABLES)),
        ],
        responses={(200, "text/csv"): OpenApiTypes.STR, **INVALID, **errors({404: "No such table."})},
    )
    def get(self, request: Request, table: str) -> HttpResponse:
        if table not in export.TABLES:
            raise NotFound("No such table.")
        period = _period(request)
        # At most a row per day: built whole, so a failure is an error answer, not a cut-off file.
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        csv.writer(response).writerows(export.table_csv_rows(table=table, period=period))
        name = f"{table}_{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
