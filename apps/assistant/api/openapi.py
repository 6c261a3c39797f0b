"""Schema pieces of the business API (the page envelope and error body live in chatbot.openapi)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from apps.assistant.models import KnowledgeEntry


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
