"""Schema pieces for the business API: the page envelope and the error body, as they really are."""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from apps.assistant.models import KnowledgeEntry


@cache
def paginated(serializer: type[serializers.BaseSerializer]) -> type[serializers.Serializer]:
    name = serializer.__name__.removesuffix("Output")
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer(many=True),
    }
    return type(f"Paginated{name}List", (serializers.Serializer,), fields)


class BusinessErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False, help_text="Per-field messages, when there are any.")


class BusinessError(serializers.Serializer):
    """What chatbot.exceptions.api_exception_handler answers for every error."""

    error = BusinessErrorDetail()


def errors(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(BusinessError, description=text) for code, text in descriptions.items()}


class KnowledgeKindFieldExtension(OpenApiSerializerFieldExtension):
    """One named enum for every `kind` of the knowledge API.

    Other apps have fields called `kind` with other choices; left inline, drf-spectacular's enum
    naming cannot tell them apart and warns.
    """

    target_class = "apps.assistant.api.serializers.KnowledgeKindField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        component = ResolvedComponent(
            name="KnowledgeKindEnum",
            type=ResolvedComponent.SCHEMA,
            object="KnowledgeKindEnum",
            schema={
                "type": "string",
                "enum": list(KnowledgeEntry.Kind.values),
                "description": "\n".join(
                    f"* `{value}` - {label}" for value, label in KnowledgeEntry.Kind.choices
                ),
            },
        )
        auto_schema.registry.register_on_missing(component)
        return component.ref
