"""Every request gets an id: the caller's X-Request-ID when it is a sane token (a proxy's or a client's,
so one id follows the request through every hop), else a new one. It is on every log line written
while the request is served (chatbot/log_context.py) and in the response's X-Request-ID header."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from chatbot import log_context

HEADER = "X-Request-ID"
# Letters, digits and a few separators, up to 128: nothing that could forge a log line or a header.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def request_id_for(presented: str | None) -> str:
    if presented and _SANE.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        # A gthread worker's thread serves one request after another: nothing bound by the last one
        # (its workspace, its conversation) may stay on this one's lines. Cleared here, not on the
        # way out, so Django's own "Not Found: ..." line, written after the middlewares, keeps the id.
        log_context.clear()
        log_context.bind(request_id=request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response
