"""The live socket on the real Redis channel layer (issue 10, item 10).

With redis-py 8's default 5 s socket_timeout, channels_redis's 5 s BZPOPMIN wait for the socket's
messages timed out and every socket closed with 1011 about 5 s after it opened.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

from apps.dashboard.tests.sockets import logged_in, member, socket_for
from apps.live.services import live_publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@sync_to_async
def publish(workspace_id: int) -> int:
    return live_publish(workspace_id=workspace_id, kind="message").pk


@pytest.mark.slow
async def test_a_socket_on_the_redis_layer_stays_open_through_quiet_gaps_polls_and_rechecks(
    redis_url, settings
):
    # Given a member's socket on the Redis layer, its safety poll and its login/membership re-check
    # brought from 30 s to 2 s and 3 s, so the socket meets each of them several times below
    settings.LIVE_SAFETY_POLL_SECONDS = 2.0
    settings.LIVE_SOCKET_RECHECK_SECONDS = 3.0
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    connected, _ = await socket.connect()
    assert connected

    # When events are published with quiet gaps on both sides of channels_redis's 5 s BZPOPMIN wait
    # (the first gap is the one that closed every socket with 1011 on redis-py's 5 s read timeout)
    published, received = [], []
    for gap in (7, 4, 7, 0):
        published.append(await publish(membership.workspace_id))
        received.append((await socket.receive_json_from(timeout=3))["id"])
        await asyncio.sleep(gap)

    # Then every event arrived once, in order, and the socket is still open
    assert received == published and len(received) == 4
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


@sync_to_async
def publish_burst(workspace_id: int, count: int) -> list[int]:
    """`count` events, each committed on its own, as a worker's tasks would commit them."""
    return [live_publish(workspace_id=workspace_id, kind="message").pk for _ in range(count)]


async def test_a_burst_of_events_reaches_the_socket_in_full_with_coalesced_wake_ups(redis_url, monkeypatch):
    # Given a member's socket on the Redis layer (its safety poll far away), counting the layer's sends
    assert isinstance(get_channel_layer(), RedisChannelLayer)
    sends: list[str] = []
    original = RedisChannelLayer.group_send

    async def counting(self, group, message):
        sends.append(group)
        await original(self, group, message)

    monkeypatch.setattr(RedisChannelLayer, "group_send", counting)
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    connected, _ = await socket.connect()
    assert connected

    # When 40 events are committed one after the other
    published = await publish_burst(membership.workspace_id, 40)

    # Then the socket gets all 40, in order, from fewer wake-ups than events (one ringer, coalescing)
    received = [(await socket.receive_json_from(timeout=3))["id"] for _ in published]
    assert received == published
    assert 1 <= len(sends) < len(published)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
