from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client

from celery_app import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_answers_over_plain_http_even_when_ssl_redirect_is_on(settings):
    settings.SECURE_SSL_REDIRECT = True

    assert Client().get("/healthz").json() == {"status": "ok"}
    assert Client().get("/readyz").status_code == 200
    assert Client().get("/api/auth/me").status_code == 301  # everything else goes to HTTPS


def test_readyz_reports_every_part_ok():
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "failing": [],
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


def test_readyz_is_503_naming_the_cache_when_it_is_unreachable(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]
    assert response.json()["checks"]["broker"] == "ok"


def test_readyz_is_503_naming_the_broker_when_it_is_unreachable():
    saved = celery_app.conf.broker_url, celery_app.conf.broker_transport_options
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = "redis://127.0.0.1:1/0", {}
    try:
        response = Client().get("/readyz")
    finally:
        celery_app.conf.broker_url, celery_app.conf.broker_transport_options = saved

    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_metrics_are_exported_in_prometheus_format(metrics_client):
    Client().get("/healthz")

    response = metrics_client.get("/metrics")

    assert response.status_code == 200
    assert "django_http_requests_total_by_view_transport_method_total" in response.content.decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789",
        "Basic dGVzdA==",
        "Bearer ",
        "test-only-metrics-token-0123456789",
    ],
)
def test_metrics_without_the_token_is_401_and_shows_no_figure(settings, authorization):
    settings.METRICS_TOKEN = "test-only-metrics-token-0123456789"
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = Client(headers=headers).get("/metrics")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"]["code"] == "not_authenticated"
    assert b"django_http" not in response.content and b"# HELP" not in response.content


def test_the_probes_stay_open_when_metrics_needs_a_token(settings):
    settings.METRICS_TOKEN = "test-only-metrics-token-0123456789"

    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code == 200


def test_metrics_is_open_without_a_token_only_where_start_up_allowed_it(settings):
    # Production refuses to start without METRICS_TOKEN unless METRICS_PUBLIC=1 (tests/test_settings.py).
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics").status_code == 200


def test_openapi_schema_is_served_and_valid_without_warnings():
    schema = Client().get("/api/schema/")
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert schema.status_code == 200
    assert b"/api/auth/login" in schema.content
    assert result.returncode == 0, result.stderr
    assert Client().get("/api/docs/").status_code == 200
