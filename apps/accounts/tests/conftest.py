from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory


def login(client: APIClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/login", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def member_client(workspace: Workspace) -> Callable[..., tuple[APIClient, Membership]]:
    """An API client logged in (through the real login endpoint) as a member with `role`."""

    def make(role: str = Role.AGENT, ws: Workspace | None = None) -> tuple[APIClient, Membership]:
        membership = MembershipFactory.create(workspace=ws or workspace, role=role)
        client = APIClient()
        tokens = login(client, membership.user.username)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        return client, membership

    return make
