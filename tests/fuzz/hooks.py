"""schemathesis hooks for tests/fuzz/run_schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

OpenAPI 3.0's Schema Object has no `propertyNames`, so the document says a rule on an object's keys as
the extension `x-propertyNames` (chatbot.openapi.PROPERTY_NAMES), with JSON Schema's meaning. Here it
becomes `propertyNames` again before schemathesis reads the document, so requests are generated (and
judged) by every rule the API keeps, the names of a contact's attributes among them.
"""

from __future__ import annotations

from typing import Any

import schemathesis

EXTENSION = "x-propertyNames"


def _unhide(node: Any) -> None:
    if isinstance(node, dict):
        if EXTENSION in node:
            node["propertyNames"] = node.pop(EXTENSION)
        for value in node.values():
            _unhide(value)
    elif isinstance(node, list):
        for value in node:
            _unhide(value)


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    _unhide(raw_schema)
