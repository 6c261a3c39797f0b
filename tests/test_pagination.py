"""Every paginated list reads `page_size` as the schema declares it (chatbot/pagination.py)."""

from __future__ import annotations

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.conftest import member_client  # noqa: F401 - the fixture
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("size", ["abc", "0", "-1", "1.5", "null"])
def test_a_page_size_that_is_not_a_whole_number_from_1_is_a_400(member_client, size):  # noqa: F811
    client, _ = member_client(Role.VIEWER)

    response = client.get(f"/api/conversations/?page_size={size}")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"page_size": ["A whole number from 1."]}


def test_a_page_size_past_the_cap_is_the_cap_and_none_is_the_default(member_client):  # noqa: F811
    client, viewer = member_client(Role.VIEWER)
    ConversationFactory.create_batch(2, channel=ChannelFactory(workspace=viewer.workspace))

    assert len(client.get("/api/conversations/?page_size=1").json()["results"]) == 1
    assert len(client.get("/api/conversations/?page_size=100000").json()["results"]) == 2
    assert len(client.get("/api/conversations/?page_size=").json()["results"]) == 2
    assert client.get("/api/conversations/?page=2&page_size=1").json()["next"] is None
    assert client.get("/api/conversations/?page=3&page_size=1").status_code == 404
