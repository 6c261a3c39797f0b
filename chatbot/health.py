"""Probes: /healthz says the process answers, /readyz that its database, cache and broker do (both
open); /metrics serves Prometheus, behind METRICS_TOKEN when it is set."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from celery_app import app as celery_app
from chatbot import prometheus, queue_metrics  # noqa: F401 - queue_metrics: its collector


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    nonce = secrets.token_hex(8)
    cache.set("readyz:probe", nonce, 10)
    if cache.get("readyz:probe") != nonce:
        raise RuntimeError("cache did not return what was written")


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "cache": _cache, "broker": _broker}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the name says which part
            results[name] = f"error: {type(exc).__name__}"
        else:
            results[name] = "ok"
    failing = [name for name, result in results.items() if result != "ok"]
    status = 503 if failing else 200
    return JsonResponse(
        {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results}, status=status
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token and not _bearer_is(request, token):
        response = JsonResponse(
            {
                "error": {
                    "code": "not_authenticated",
                    "message": "/metrics needs the header Authorization: Bearer <METRICS_TOKEN>.",
                }
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = prometheus.scrape_registry()
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _bearer_is(request: HttpRequest, token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Bytes, because compare_digest refuses non-ASCII str; constant time, so timing tells nothing.
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
