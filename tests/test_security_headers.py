from __future__ import annotations

import html
import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)


def test_html_pages_carry_the_csp_nosniff_and_deny_framing():
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_json_answers_get_nosniff_but_no_page_policy():
    response = APIClient().get("/api/auth/me")

    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in response


def test_api_docs_load_their_assets_from_our_own_static_files():
    page = Client().get("/api/docs/")

    assert page.status_code == 200
    # Swagger UI styles elements from its script: this page alone allows inline styles, never scripts.
    assert page["Content-Security-Policy"] == POLICY.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    )
    assert "script-src 'self';" in page["Content-Security-Policy"]
    body = page.content.decode()
    assert "cdn.jsdelivr.net" not in body and "unpkg.com" not in body
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "<script>" not in body  # no inline script: the start-up code is a file of its own
    sources = [html.unescape(src) for src in re.findall(r'<script src="([^"]+)"', body)]
    assert len(sources) == 3 and all(src.startswith("/") for src in sources)  # all from our own origin
    startup = Client().get(sources[-1])
    assert (startup.status_code, startup["Content-Type"]) == (200, "application/javascript")


def test_production_settings_turn_on_hsts_and_secure_cookies():
    # The suite runs with DEBUG off and the production defaults (only the redirect is turned off).
    assert django_settings.DEBUG is False
    assert django_settings.SECURE_HSTS_SECONDS >= 31_536_000
    assert django_settings.SECURE_HSTS_INCLUDE_SUBDOMAINS is True
    assert django_settings.SESSION_COOKIE_SECURE is True
    assert django_settings.CSRF_COOKIE_SECURE is True
    assert django_settings.SESSION_COOKIE_HTTPONLY is True

    response = Client().get("/healthz", secure=True)

    assert response["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")


def test_cors_answers_only_configured_origins_and_never_a_wildcard_with_credentials(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}

    allowed = Client().options("/api/auth/me", HTTP_ORIGIN="https://app.example.com", **preflight)
    refused = Client().options("/api/auth/me", HTTP_ORIGIN="https://evil.example.net", **preflight)
    plain = Client().get("/api/auth/me", HTTP_ORIGIN="https://evil.example.net")

    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Access-Control-Allow-Credentials" not in allowed
    assert "Access-Control-Allow-Origin" not in refused
    assert "Access-Control-Allow-Origin" not in plain
    assert not getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False)
    assert settings.CORS_ALLOW_CREDENTIALS is False


def test_csrf_is_enforced_on_a_session_form_post():
    response = Client(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": "admin", "password": "whatever"}
    )

    assert response.status_code == 403
