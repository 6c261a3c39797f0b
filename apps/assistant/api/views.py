from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import role_required
from apps.accounts.selectors import request_workspace
from apps.assistant import knowledge, selectors, services
from apps.assistant.api import openapi  # noqa: F401 - registers the named enum for knowledge kinds
from apps.assistant.api import serializers as s
from apps.assistant.models import KnowledgeEntry
from chatbot.exceptions import ValidationFailed
from chatbot.openapi import errors, paginated
from chatbot.pagination import Pagination

MembersReadAdminsWrite = role_required(read=Role.VIEWER, write=Role.ADMIN)
MembersReadSupervisorsWrite = role_required(read=Role.VIEWER, write=Role.SUPERVISOR)
SupervisorsOnly = role_required(read=Role.SUPERVISOR, write=Role.SUPERVISOR)
# Room for the multipart envelope around a file at the limit; anything larger is refused unread.
MULTIPART_OVERHEAD = 64 * 1024
TOO_LARGE = f"The file is larger than {services.MAX_IMPORT_BYTES // (1024 * 1024)} MB."
INVALID = errors({400: "Invalid input."})
NOT_FOUND = errors({404: "Not found in this workspace."})


def _valid(
    serializer: type[serializers.Serializer[None]], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    checked = serializer(data=data, partial=partial)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


class BusinessProfileView(APIView):
    """The business the assistant speaks for: who it is, how it speaks, when it is open."""

    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(operation_id="business_retrieve", responses={200: s.BusinessProfileOutput})
    def get(self, request: Request) -> Response:
        profile = services.profile_get_or_create(workspace_id=request_workspace(request).pk)
        return Response(s.BusinessProfileOutput(profile).data)

    @extend_schema(
        operation_id="business_update",
        request=s.BusinessProfileInput,
        responses={200: s.BusinessProfileOutput, **INVALID},
    )
    def put(self, request: Request) -> Response:
        fields = _valid(s.BusinessProfileInput, request.data)
        profile = services.profile_update(workspace_id=request_workspace(request).pk, **fields)
        return Response(s.BusinessProfileOutput(profile).data)


def _entry(request: Request, pk: int) -> KnowledgeEntry:
    return selectors.knowledge_get(workspace=request_workspace(request), pk=pk)


class KnowledgeListView(APIView):
    permission_classes = [MembersReadSupervisorsWrite]

    @extend_schema(
        operation_id="business_knowledge_list",
        parameters=[s.KnowledgeFilter],
        responses={200: paginated(s.KnowledgeEntryOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _valid(s.KnowledgeFilter, request.query_params)
        entries = selectors.knowledge_list(workspace=request_workspace(request), **filters)
        paginator = Pagination()
        page = paginator.paginate_queryset(entries, request)
        return paginator.get_paginated_response(s.KnowledgeEntryOutput(page, many=True).data)

    @extend_schema(
        operation_id="business_knowledge_create",
        request=s.KnowledgeEntryInput,
        responses={201: s.KnowledgeEntryOutput, **INVALID},
    )
    def post(self, request: Request) -> Response:
        fields = _valid(s.KnowledgeEntryInput, request.data)
        entry = services.knowledge_create(workspace_id=request_workspace(request).pk, **fields)
        return Response(
            s.KnowledgeEntryOutput(_entry(request, entry.pk)).data, status=status.HTTP_201_CREATED
        )


class KnowledgeDetailView(APIView):
    permission_classes = [MembersReadSupervisorsWrite]

    @extend_schema(
        operation_id="business_knowledge_retrieve", responses={200: s.KnowledgeEntryOutput, **NOT_FOUND}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.KnowledgeEntryOutput(_entry(request, pk)).data)

    @extend_schema(
        operation_id="business_knowledge_partial_update",
        request=s.KnowledgeEntryUpdateInput,
        responses={200: s.KnowledgeEntryOutput, **INVALID, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        entry = _entry(request, pk)
        fields = _valid(s.KnowledgeEntryUpdateInput, request.data, partial=True)
        services.knowledge_update(entry=entry, **fields)
        return Response(s.KnowledgeEntryOutput(_entry(request, pk)).data)

    @extend_schema(operation_id="business_knowledge_destroy", responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        services.knowledge_delete(entry=_entry(request, pk), actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class KnowledgeImportView(APIView):
    permission_classes = [SupervisorsOnly]
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="business_knowledge_import",
        request={"multipart/form-data": s.KnowledgeImportInput},
        responses={
            200: s.KnowledgeImportOutput,
            **errors({400: "No file, or a file that cannot be imported.", 413: "Larger than 5 MB."}),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > services.MAX_IMPORT_BYTES + MULTIPART_OVERHEAD:
            raise services.PayloadTooLarge(TOO_LARGE)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed("Send the file as the multipart field 'file'.")
        if upload.size is not None and upload.size > services.MAX_IMPORT_BYTES:
            raise services.PayloadTooLarge(TOO_LARGE)
        report = services.knowledge_import(
            workspace_id=request_workspace(request).pk,
            filename=upload.name or "",
            content=upload.read(services.MAX_IMPORT_BYTES + 1),
        )
        return Response(s.KnowledgeImportOutput(report).data)


class KnowledgeSearchView(APIView):
    """Try retrieval as the assistant would: the passages a customer's question brings up."""

    permission_classes = [MembersReadSupervisorsWrite]

    @extend_schema(
        operation_id="business_knowledge_search",
        parameters=[s.KnowledgeSearchFilter],
        responses={200: s.KnowledgeSearchOutput, **INVALID},
    )
    def get(self, request: Request) -> Response:
        query = _valid(s.KnowledgeSearchFilter, request.query_params)
        passages = knowledge.retrieve(
            workspace_id=request_workspace(request).pk, query=query["q"], k=query["k"]
        )
        confident = knowledge.confident_answer(passages=passages, query=query["q"])
        body = {
            "query": query["q"],
            "passages": passages,
            "confident_entry_id": confident.entry_id if confident else None,
        }
        return Response(s.KnowledgeSearchOutput(body).data)
