from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsAdmin
from apps.accounts.selectors import request_workspace
from apps.audit import selectors
from apps.audit.api import serializers as s
from chatbot.pagination import Pagination


class AuditListView(APIView):
    """The workspace's audit log, newest first; admins and owners only."""

    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="audit_list",
        parameters=[s.AuditFilter],
        responses={200: s.AuditPageOutput},
    )
    def get(self, request: Request) -> Response:
        filters = s.AuditFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        entries = selectors.audit_list(workspace=request_workspace(request), **filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(entries, request)
        return paginator.get_paginated_response(s.AuditEntryOutput(page, many=True).data)
