from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_redis import get_redis_connection

from apps.accounts.models import Workspace
from apps.accounts.tests.conftest import member_client
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory


@pytest.fixture
def web_channel(workspace: Workspace) -> Channel:
    return ChannelFactory.create(workspace=workspace, kind=Channel.Kind.WEB, phone_number_id="", name="Shop")


@pytest.fixture
def command_redis(redis_url: str, settings: pytest.FixtureRequest) -> Iterator[object]:
    """A clean command channel on the test's Redis db."""
    settings.REDIS_URL = redis_url  # type: ignore[attr-defined]
    client = get_redis_connection("default")
    for key in client.scan_iter("wweb:*"):
        client.delete(key)
    yield client
    for key in client.scan_iter("wweb:*"):
        client.delete(key)


__all__ = ["command_redis", "member_client", "web_channel"]
