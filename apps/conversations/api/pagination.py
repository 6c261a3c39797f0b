"""Page through a queryset from an APIView (the schema side is `openapi.paginated`)."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from chatbot.pagination import Pagination

M = TypeVar("M", bound=Model)


def paginated_response(
    request: Request, queryset: QuerySet[M], serializer: type[serializers.BaseSerializer[M]]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    # The stubs type the instance of a many=True serializer as one row, not a list of them.
    rows = serializer(page, many=True)  # type: ignore[arg-type]
    return paginator.get_paginated_response(rows.data)
