from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.calendar import services


def approve(url: str, ca: str | bool = True) -> dict[str, str]:
    """Follow the authorization URL like the browser does; the provider's redirect parameters."""
    verify = ssl.create_default_context(cafile=ca) if isinstance(ca, str) else ca
    response = httpx.get(url, verify=verify, follow_redirects=False)
    assert response.status_code == 302, response.text
    return {k: v[-1] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


@pytest.fixture
def staff(db: Any) -> Any:
    workspace = WorkspaceFactory()
    user = UserFactory()
    return workspace, user


def connect(staff: Any, provider: str, ca: str | bool = True) -> Any:
    workspace, user = staff
    url = services.connection_connect_start(
        workspace_id=workspace.pk,
        user_id=user.pk,
        session_key="session-1",
        provider=provider,
        redirect_uri="https://app.example/calendar/callback",
    )
    params = approve(url, ca)
    return services.connection_connect_finish(
        workspace_id=workspace.pk, user_id=user.pk, session_key="session-1", params=params
    )
