"""Errors Django answers before any DRF view runs are the API's JSON error body under /api/ (found by
schemathesis: `/api/contacts/-5/` matched no route and came back as Django's HTML page)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts import services as account_services
from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    membership = MembershipFactory.create(role=Role.OWNER)
    pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    return Client(headers={"Authorization": f"Bearer {pair.access}"})


@pytest.mark.parametrize("path", ["/api/contacts/-5/", "/api/queue/abc/cancel", "/api/no-such-thing"])
def test_a_url_no_api_route_matches_is_a_json_404(client, path):
    response = client.post(path) if path.endswith("cancel") else client.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_a_body_over_the_upload_limit_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 2048})

    response = client.patch("/api/accounts/workspace/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_too_many_multipart_fields_is_a_json_400(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    boundary = "xyz"
    parts = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n1\r\n' for i in range(20)
    )

    response = client.post(
        "/api/contacts/import",
        f"{parts}--{boundary}--\r\n",
        content_type=f"multipart/form-data; boundary={boundary}",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_outside_the_api_django_keeps_its_own_pages():
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
