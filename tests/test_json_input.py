"""Requests are held to what the OpenAPI schema says (chatbot.serializers): bodies to its JSON types,
bodies and query strings to its string lengths as sent.

Found by schemathesis: DRF took `0` for a string (stored "0") and for a boolean (false), and a
string over maxLength when its tail was whitespace (it trims before it counts).
"""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from apps.accounts import services as account_services
from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory
from chatbot.serializers import JSONInput, type_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner() -> APIClient:
    membership = MembershipFactory.create(role=Role.OWNER)
    pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
    return client


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("patch", "/api/accounts/workspace/", {"name": 0}, "name"),
        (
            "post",
            "/api/accounts/members/",
            {"username": "ann", "password": "x" * 12, "role": "agent", "last_name": 0},
            "last_name",
        ),
        (
            "post",
            "/api/business/knowledge/",
            {"title": "Open?", "content": "Yes", "is_active": 0},
            "is_active",
        ),
        ("post", "/api/contacts/", {"wa_id": "34600111222", "opted_out": 0}, "opted_out"),
        ("put", "/api/business/", {"disclosure_text": 0}, "disclosure_text"),
        (
            "put",
            "/api/business/providers",
            {"providers": [{"provider": "openai", "api_key": 0}]},
            "providers",
        ),
        ("post", "/api/whatsapp/channels/", {"phone_number_id": "123", "send_rate": "80"}, "send_rate"),
        ("post", "/api/contacts/", {"wa_id": "34600111222", "tags": ["vip", 1]}, "tags"),
        ("post", "/api/contacts/", {"wa_id": "34600111222", "notes": "T" + "\f" * 10_000}, "notes"),
        ("post", "/api/contacts/", {"wa_id": "34600111222", "tags": ["vip" + " " * 40]}, "tags"),
    ],
)
def test_a_value_of_another_json_type_is_a_400(owner, method, path, body, field):
    response = getattr(owner, method)(path, body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize(
    ("path", "name", "limit"), [("/api/contacts/", "q", 200), ("/api/audit/", "action", 64)]
)
def test_a_query_value_over_its_length_is_a_400_even_when_the_excess_is_whitespace(owner, path, name, limit):
    response = owner.get(path, {name: "x" + " " * limit})

    assert response.status_code == 400, response.content
    assert name in response.json()["error"]["details"]


class Sample(JSONInput):
    name = serializers.CharField(required=False, allow_null=True)
    count = serializers.IntegerField(required=False)
    hours = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
        required=False,
    )


def test_values_of_the_right_type_and_null_pass_and_others_name_the_field():
    assert Sample(data={"name": None, "count": 3, "hours": {"mon": [["09:00"]]}}).is_valid()

    wrong = Sample(data={"count": True, "hours": {"mon": [[9]]}})

    assert not wrong.is_valid()
    assert wrong.errors == {
        "count": ["Expected an integer."],
        "hours": ["mon: Item 0: Item 0: Expected a string."],
    }


def test_type_problem_leaves_fields_it_does_not_know_to_drf():
    assert type_problem(serializers.JSONField(), 1) is None


def test_a_number_field_takes_json_numbers_only():
    number = serializers.FloatField()

    assert (type_problem(number, 1), type_problem(number, 1.5)) == (None, None)
    assert type_problem(number, "1.5") == "Expected a number."
    assert type_problem(number, True) == "Expected a number."
