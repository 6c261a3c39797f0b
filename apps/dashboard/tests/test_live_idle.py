"""Idle live sockets on the Redis channel layer cost no database queries: wake-ups deliver, and the
poll is a slow safety net. (With the in-memory layer of embedded mode the 1 s poll stays.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db.backends import utils

from apps.accounts.tests.factories import MembershipFactory
from apps.dashboard.tests.sockets import logged_in, member, socket_for
from apps.dashboard.tests.test_live_consumer import publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

SOCKETS = 50


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def statements(monkeypatch) -> Iterator[list[str]]:
    """Every SQL statement this process runs, from any thread (the consumers query from a thread pool)."""
    seen: list[str] = []
    lock = threading.Lock()
    original = utils.CursorWrapper._execute  # type: ignore[attr-defined]

    def counting(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            seen.append(sql)
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counting)
    yield seen


@pytest.mark.usefixtures("redis_url")
async def test_fifty_idle_sockets_on_redis_cost_no_queries_and_an_event_still_arrives_at_once(statements):
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    membership = await sync_to_async(MembershipFactory.create)()
    others = await sync_to_async(
        lambda: [MembershipFactory.create(workspace=membership.workspace) for _ in range(SOCKETS - 1)]
    )()
    sockets: list[WebsocketCommunicator] = [
        socket_for(await logged_in(m.user)) for m in [membership, *others]
    ]
    for socket in sockets:
        connected, _ = await socket.connect()
        assert connected

    await asyncio.sleep(0.5)  # let the connects' own queries finish
    before = len(statements)
    await asyncio.sleep(3)
    idle_queries = len(statements) - before
    event_id = await publish(membership.workspace_id, "message", conversation_id=7)
    started = asyncio.get_running_loop().time()
    received = [await socket.receive_json_from(timeout=2) for socket in sockets]
    took = asyncio.get_running_loop().time() - started

    assert idle_queries == 0  # the 1 s poll made 145 here
    assert {event["id"] for event in received} == {event_id}
    assert took < 2.0  # the wake-up, not the 30 s safety poll (50 sockets each read the event)
    for socket in sockets:
        assert await socket.receive_nothing(timeout=0.01)
        await socket.disconnect()


async def test_on_redis_the_safety_poll_delivers_a_lost_wake_up(settings, monkeypatch):
    settings.LIVE_SAFETY_POLL_SECONDS = 1.0
    monkeypatch.setattr("apps.live.services._ring", lambda workspace_id: None)  # e.g. Redis restarted
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    await socket.connect()

    event_id = await publish(membership.workspace_id)

    assert (await socket.receive_json_from(timeout=3))["id"] == event_id
    await socket.disconnect()
