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


# Declared on every list answered with a page envelope, so generated clients can ask for page 2.
# No maximum on page_size: a larger one is taken as the cap (chatbot.pagination).
PAGE_PARAMETERS = (
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Page number, from 1; a page past the last one answers 404.",
    },
    {
        "name": "page_size",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Rows per page: 50 unless given, at most 500 (a larger size gets 500).",
    },
)
PAST_THE_END = "No such page: past the last one (`page`), or not a page number."
WORKSPACE_PARAMETER = {
    "name": "X-Workspace",
    "in": "header",
    "required": False,
    # No length or pattern: a slug the user is not a member of gets a 403 (/auth/me answers with no
    # current workspace), whatever it looks like.
    "schema": {"type": "string"},
    "description": "The workspace's slug, for a user who belongs to several (default: the first).",
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests allowed in the window."},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests left in the window."},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the window resets."},
}


def _is_page(response: Mapping[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).startswith("#/components/schemas/Paginated")


def _always_present(serializer: Any, schema: dict[str, Any]) -> None:
    """Every field of an answer is in it, so required: a model serializer's field for a blank-able
    column is `required=False` for input's sake, which generated clients typed `T | Unset` (68 fields).
    A field declared `required=False` on the serializer itself may be left out (DRF skips it when its
    source is missing, as ErrorDetail's `details`) and stays optional."""
    declared = getattr(serializer, "_declared_fields", {})
    optional = {name for name, field in declared.items() if field._kwargs.get("required") is False}
    required = [name for name in schema.get("properties", {}) if name not in optional]
    if required:
        schema["required"] = required


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        parameters = operation.setdefault("parameters", [])
        paged = _is_page(operation["responses"].get("200", {}))
        if paged:
            named = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
            parameters.extend(copy.deepcopy(p) for p in PAGE_PARAMETERS if p["name"] not in named)
        for parameter in parameters:
            # DRF reads an empty value of an optional field in a query string as absent.
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        responses: dict[str, Any] = operation["responses"]
        for code, description in implied_errors(self.view, operation):
            error = OpenApiResponse(ErrorOutput, description=description)
            # drf-spectacular is unannotated
            responses.setdefault(str(code), self._get_response_for_code(error, str(code)))  # type: ignore[no-untyped-call]
        if any(requirement for requirement in operation.get("security", [])):  # a login is needed
            parameters.append(dict(WORKSPACE_PARAMETER))
        for status, response in responses.items():
            if status.startswith("2") and isinstance(response, dict):
                response.setdefault("headers", {}).update(copy.deepcopy(RATE_LIMIT_HEADERS))
        if paged:
            error = OpenApiResponse(ErrorOutput, description=PAST_THE_END)
            responses.setdefault("404", self._get_response_for_code(error, "404"))  # type: ignore[no-untyped-call]
        if any(parameter["in"] in ("query", "path") for parameter in parameters):
            responses.setdefault("414", {"description": TOO_LONG})
        if not parameters:
            del operation["parameters"]
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
        if direction == "response":
            _always_present(serializer, schema)
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


# --- what third-party client generators need (issue 18) -------------------------------------------
def _enum_varname(value: str) -> str:
    """An identifier for an enum value, keeping apart what generators would fold together
    ("Etc/GMT+1" and "Etc/GMT-1", "GMT+0" and "GMT0")."""
    name = "".join(c if c.isalnum() else "_" for c in value.replace("+", "_PLUS_"))
    return "_".join(part for part in name.upper().split("_") if part) or "EMPTY"


def enum_varnames(values: list[str]) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for value in values:
        base = _enum_varname(value)
        if value[:1].isdigit() or base[:1].isdigit():
            base = f"V_{base}"
        # "Etc/GMT-1" and "Etc/GMT+1": a minus before a digit is a sign, not a separator.
        if "-" in value and any(
            value[i] == "-" and value[i + 1 : i + 2].isdigit() for i in range(len(value))
        ):
            base = _enum_varname(value.replace("-", "_MINUS_"))
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names.append(name)
    return names


def _defaults_out_of_branches(node: Any) -> None:
    """A default inside one branch of a oneOf/anyOf (drf-spectacular puts a blank-allowed field's
    there) may break that branch's own pattern or format, which validators reject: it belongs to
    the property."""
    if isinstance(node, dict):
        for key in ("oneOf", "anyOf"):
            for branch in node.get(key, []):
                if isinstance(branch, dict) and "default" in branch:
                    node.setdefault("default", branch.pop("default"))
        for value in node.values():
            _defaults_out_of_branches(value)
    elif isinstance(node, list):
        for value in node:
            _defaults_out_of_branches(value)


# The range of the database's integer column, which Django adds as a validator to a model
# serializer's field: 32 or 64 bits depending on the backend, so left out of the published schema
# (it would differ between SQLite and PostgreSQL), as is the int64 format it brings.
_BACKEND_INTEGER_BOUNDS = {2**15 - 1, 2**31 - 1, 2**63 - 1, -(2**15), -(2**31), -(2**63)}


def _without_backend_bounds(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            dropped = False
            for key in ("maximum", "minimum"):
                if node.get(key) in _BACKEND_INTEGER_BOUNDS:
                    del node[key]
                    dropped = True
            if dropped and node.get("format") == "int64":
                del node["format"]
        for value in node.values():
            _without_backend_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _without_backend_bounds(value)


COMPONENTS = "#/components/schemas/"


def _nullable_references_typed(node: Any, components: Mapping[str, Any]) -> None:
    """`nullable` needs a `type` beside it in OpenAPI 3.0 (redocly, strict validators): drf-spectacular
    writes a nullable reference as `allOf: [$ref], nullable: true`, made here `oneOf: [$ref, NullEnum]`
    as it writes a nullable choice; the referenced schema's type is added beside."""
    if isinstance(node, dict):
        if node.get("nullable") and len(node.get("allOf", [])) == 1 and "$ref" in node["allOf"][0]:
            # As drf-spectacular writes a nullable choice, which generators read as "T or None"
            # (openapi-python-client took `allOf` with a type beside it for a T never null).
            node["oneOf"] = [*node.pop("allOf"), {"$ref": f"{COMPONENTS}NullEnum"}]
        branches = node.get("oneOf") or []
        if node.get("nullable") and "type" not in node and branches:
            target = str(branches[0].get("$ref", "")).rsplit("/", 1)[-1]
            node["type"] = components.get(target, {}).get("type", "object")
        for value in node.values():
            _nullable_references_typed(value, components)
    elif isinstance(node, list):
        for value in node:
            _nullable_references_typed(value, components)


def _operations(result: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield operation


def _summary(operation: Mapping[str, Any]) -> str:
    description = str(operation.get("description", "")).strip()
    first = description.split("\n", 1)[0].split(". ", 1)[0].rstrip(".:")
    if first and len(first) <= 100:
        return first
    return str(operation.get("operationId", "")).replace("_", " ").capitalize()


def postprocess_for_clients(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """SPECTACULAR_SETTINGS' last hook: the schema as openapi-spec-validator and the client
    generators (openapi-python-client with its defaults) accept it."""
    _defaults_out_of_branches(result)
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request"):  # answers only: an input's bounds are what it accepts
            _without_backend_bounds(component)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("NullEnum", {"enum": [None]})
    _nullable_references_typed(result, schemas)
    for operation in _operations(result):
        operation.setdefault("summary", _summary(operation))
        operation.setdefault("security", [])  # no security named: the operation is public (log in)
    for schema in result.get("components", {}).get("schemas", {}).values():
        values = schema.get("enum")
        if schema.get("type") == "string" and values and "x-enum-varnames" not in schema:
            schema["x-enum-varnames"] = enum_varnames([v for v in values if v is not None])
    return result
