"""The API's documentation page (its own module: chatbot.openapi is loaded by drf-spectacular's views)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI at /api/docs/, from our own static files. It sets element styles from its script,
    which `style-src 'self'` blocks (a console error on every load): this page alone allows inline
    styles; scripts stay our own files only."""

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]  # drf-spectacular is unannotated
        response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
            "style-src 'self'", "style-src 'self' 'unsafe-inline'"
        )
        return response
