"""Page through a queryset from an APIView (the schema side is `openapi.paginated`)."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from chatbot.pagination import Pagination


def paginated_response(
    request: Request, queryset: QuerySet[Model], serializer: type[serializers.BaseSerializer]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer(page, many=True).data)
