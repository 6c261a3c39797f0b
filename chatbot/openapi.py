"""Schema pieces shared by every API: the page envelope and the error body, described as they really are.

`AutoSchema` (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]) adds to every operation the errors that the
framework around the view answers with, so views declare only their own (see `implied_errors`), and
describes two DRF habits drf-spectacular leaves out: a string field trims whitespace before it
checks for blanks, and an optional query parameter sent empty counts as not sent.
`input_schema` adds to an input serializer's schema the rules its fields cannot express.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

from django.conf import settings
from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated


@cache
def paginated(serializer: type[serializers.BaseSerializer[Any]]) -> type[serializers.Serializer[Any]]:
    """The page envelope of `serializer` (one class per serializer, so the schema names it once)."""
    name = serializer.__name__.removesuffix("Serializer").removesuffix("Output")
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer(many=True),
    }
    return type(f"Paginated{name}List", (serializers.Serializer,), fields)


class ErrorDetail(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False, help_text="Per-field messages, when there are any.")


class ErrorOutput(serializers.Serializer[dict[str, Any]]):
    """What chatbot.exceptions.api_exception_handler answers for every error."""

    error = ErrorDetail()


def errors(descriptions: dict[int, str]) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorOutput, description=text) for code, text in descriptions.items()}


# --- rules the fields of an input cannot express ---------------------------------------------------
@dataclass(frozen=True)
class Component:
    """A named schema, for a rule used by several inputs (the schema then names it once)."""

    name: str
    schema: Mapping[str, Any]


TIME_ZONE = Component(
    "TimeZoneEnum",
    {"type": "string", "enum": sorted(available_timezones()), "description": "An IANA time zone name."},
)


@dataclass(frozen=True)
class InputSchema:
    fields: Mapping[str, Any]
    whole: Mapping[str, Any]
    partial: Mapping[str, Any]


S = TypeVar("S", bound=type[serializers.BaseSerializer[Any]])


def input_schema(
    *,
    fields: Mapping[str, Any] | None = None,
    whole: Mapping[str, Any] | None = None,
    partial: Mapping[str, Any] | None = None,
) -> Callable[[S], S]:
    """Rules of an input serializer that its fields do not tell drf-spectacular. Schema only.

    `fields`: merged into the schema of each named field (a `Component` becomes a reference to it);
    `whole`: merged into the object's schema when all of it is sent (POST, PUT), e.g. a rule that
    spans fields; `partial`: the same for a PATCH.
    """

    def decorate(serializer: S) -> S:
        serializer._input_schema = InputSchema(fields or {}, whole or {}, partial or {})  # type: ignore[attr-defined]
        return serializer

    return decorate


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            # A copy: drf-spectacular's basic types share their nested dicts (an object's
            # additionalProperties), and a rule merged into one would reach every other object.
            base[key] = _merge(copy.deepcopy(base[key]), value)
        else:
            base[key] = copy.deepcopy(value)  # the schema is edited later on; the rule stays as declared
    return base


NOT_BLANK = r"[^\s\x1c-\x1f\x85]"  # one character Python's str.strip() keeps (a schema's \S is wider)

# --- the errors around every view ------------------------------------------------------------------

RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}
}
TOO_LONG = (
    "The URL is longer than the web server accepts (its limit on the request line); sent as plain text."
)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        for parameter in parameters:
            # DRF reads an empty value of an optional field in a query string as absent.
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        responses: dict[str, Any] = operation["responses"]
        for code, description in implied_errors(self.view, operation):
            error = OpenApiResponse(ErrorOutput, description=description)
            # drf-spectacular is unannotated
            responses.setdefault(str(code), self._get_response_for_code(error, str(code)))  # type: ignore[no-untyped-call]
        if any(parameter["in"] in ("query", "path") for parameter in parameters):
            responses.setdefault("414", {"description": TOO_LONG})
        if "429" in responses:
            responses["429"].setdefault("headers", {}).update(RETRY_AFTER)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> Any:
        # drf-spectacular is unannotated
        schema = super()._map_serializer_field(field, direction, bypass_extensions)  # type: ignore[no-untyped-call]
        if (
            direction == "request"
            and type(field) is serializers.CharField
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & schema.keys()
        ):
            # Trimmed first, so whitespace alone is blank and refused. Python trims more than a
            # schema's \s matches (U+001C-U+001F, U+0085): those count as blank here too.
            schema["pattern"] = NOT_BLANK
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> Any:
        # drf-spectacular is unannotated
        schema = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]
        rules: InputSchema | None = getattr(serializer, "_input_schema", None)
        if rules is None or direction != "request":
            return schema
        properties = schema.get("properties", {})
        for name, rule in rules.fields.items():
            if name not in properties:
                continue
            if isinstance(rule, Component):
                description = properties[name].get("description")
                ref = self._component(rule)
                properties[name] = {"allOf": [ref], "description": description} if description else ref
            else:
                _merge(properties[name], rule)
        _merge(schema, rules.partial if getattr(serializer, "partial", False) else rules.whole)
        return schema

    def _get_request_for_media_type(self, serializer: Any, direction: Any = "request") -> Any:
        # drf-spectacular is unannotated
        schema, required = super()._get_request_for_media_type(serializer, direction)  # type: ignore[no-untyped-call]
        rules: InputSchema | None = getattr(serializer, "_input_schema", None)
        if rules is not None and "anyOf" in (rules.partial if self.method == "PATCH" else rules.whole):
            required = True  # one of several fields is required, so no body is no good either
        return schema, required

    def _component(self, component: Component) -> dict[str, str]:
        resolved = ResolvedComponent(
            name=component.name,
            type=ResolvedComponent.SCHEMA,
            object=component.name,
            schema=dict(component.schema),
        )
        self.registry.register_on_missing(resolved)
        return resolved.ref


def implied_errors(view: Any, operation: Mapping[str, Any]) -> Iterator[tuple[int, str]]:
    """The errors DRF and the project's settings answer with around the view's own code."""
    places = {parameter["in"] for parameter in operation.get("parameters", [])}
    has_body = "requestBody" in operation
    if has_body or "query" in places:
        yield (
            400,
            "Not valid: a body that cannot be parsed, or a value that breaks a rule (see error.details).",
        )
    if view.get_authenticators():
        yield 401, "Not logged in, or the login has ended (error.code tells which)."
    if any(not isinstance(permission, (AllowAny, IsAuthenticated)) for permission in view.get_permissions()):
        yield 403, "Your role in this workspace does not allow this."
    if "path" in places:
        yield 404, "Not found in this workspace."
    if has_body:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        yield 413, f"The body is larger than the server reads ({limit // 1024} KiB, files apart)."
        yield 415, "The body's Content-Type is not one this operation reads."
    if view.get_throttles():
        yield 429, "Too many requests; try again after Retry-After seconds."
