"""Schema pieces shared by every API: the page envelope and the error body, described as they really are."""

from __future__ import annotations

from functools import cache

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


@cache
def paginated(serializer: type[serializers.BaseSerializer]) -> type[serializers.Serializer]:
    """The page envelope of `serializer` (one class per serializer, so the schema names it once)."""
    name = serializer.__name__.removesuffix("Serializer").removesuffix("Output")
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer(many=True),
    }
    return type(f"Paginated{name}List", (serializers.Serializer,), fields)


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False, help_text="Per-field messages, when there are any.")


class ErrorOutput(serializers.Serializer):
    """What chatbot.exceptions.api_exception_handler answers for every error."""

    error = ErrorDetail()


def errors(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorOutput, description=text) for code, text in descriptions.items()}
