"""The bases of what the API reads: query parameters (`QueryInput`) and JSON bodies (`JSONInput`).

Both hold a request to what the OpenAPI schema says of it, where DRF alone is more lenient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from rest_framework import serializers

# Any DRF field: the stubs' type parameters are invariant, so only Any admits every kind of field.
Field: TypeAlias = serializers.Field[Any, Any, Any, Any]


def length_problem(field: Field, value: Any) -> str | None:
    """A string over the field's max_length as sent: DRF trims whitespace first, the schema does not."""
    if isinstance(field, serializers.CharField) and isinstance(value, str):
        if field.max_length is not None and len(value) > field.max_length:
            return str(field.error_messages["max_length"]).format(max_length=field.max_length)
    return None


def type_problem(field: Field, value: Any) -> str | None:
    """Why `value` is not of the JSON type (or length) the schema gives `field`, or None when it is."""
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.ListSerializer | serializers.ListField):
        if not isinstance(value, list):
            return "Expected a list."
        child = field.child
        for index, item in enumerate(value):
            # A nested serializer checks its own items (JSONInput); DRF checks they are objects.
            problem = (
                None
                if child is None or isinstance(child, serializers.Serializer)
                else type_problem(child, item)
            )
            if problem:
                return f"Item {index}: {problem}"
        return None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return "Expected an object."
        for key, item in value.items():
            problem = type_problem(field.child, item)
            if problem:
                return f"{key}: {problem}"
        return None
    if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
        return "Expected true or false."
    if isinstance(field, serializers.IntegerField) and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        return "Expected an integer."
    if isinstance(field, serializers.FloatField | serializers.DecimalField) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return "Expected a number."
    if isinstance(field, serializers.CharField | serializers.ChoiceField) and not isinstance(value, str):
        return "Expected a string."
    return length_problem(field, value)


class QueryInput(serializers.Serializer[None]):  # input only: never given an instance
    """Query parameters, whose string limits hold for the values as sent."""

    def problem(self, field: Field, value: Any) -> str | None:
        return length_problem(field, value)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            problems = {
                name: [problem]
                for name, field in self.fields.items()
                if not field.read_only and name in data and (problem := self.problem(field, data[name]))
            }
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)


class JSONInput(QueryInput):
    """A JSON body whose values must have the JSON types its schema names.

    DRF coerces on its own: 0 is accepted for a string (as "0") and for a boolean (as false),
    "5" for an integer. The OpenAPI schema promises strings, booleans and integers, so anything
    else is refused with the field's error, as any other invalid value is.
    """

    def problem(self, field: Field, value: Any) -> str | None:
        return type_problem(field, value)
