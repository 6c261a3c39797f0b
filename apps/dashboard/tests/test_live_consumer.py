from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from apps.dashboard.routing import websocket_urlpatterns
from apps.live.services import live_publish, workspace_group

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


application = URLRouter(websocket_urlpatterns)


def communicator(user, query: str = "") -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/live/{query}")
    socket.scope["user"] = user
    return socket


@sync_to_async
def member(role: str = Role.VIEWER):
    return MembershipFactory.create(role=role)


@sync_to_async
def publish(workspace_id: int, kind: str = "message", conversation_id: int | None = None) -> int:
    return live_publish(workspace_id=workspace_id, kind=kind, conversation_id=conversation_id).pk


async def test_anonymous_users_are_refused():
    socket = communicator(AnonymousUser())

    connected, code = await socket.connect()

    assert not connected and code == 4401


async def test_users_without_a_membership_are_refused():
    user = await sync_to_async(UserFactory.create)()
    socket = communicator(user)

    connected, code = await socket.connect()

    assert not connected and code == 4403


async def test_a_member_gets_events_of_their_workspace_only_after_the_given_id():
    membership = await member()
    other = await sync_to_async(WorkspaceFactory.create)()
    seen = await publish(membership.workspace_id)
    await publish(other.pk)
    wanted = await publish(membership.workspace_id, "conversation", conversation_id=42)
    socket = communicator(membership.user, f"?after={seen}")

    connected, _ = await socket.connect()
    first = await socket.receive_json_from(timeout=3)

    assert connected
    assert first == {"id": wanted, "kind": "conversation", "conversation_id": 42, "payload": {}}
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


async def test_a_wake_up_delivers_new_events_and_no_event_twice():
    membership = await member()
    socket = communicator(membership.user)
    await socket.connect()
    assert await socket.receive_nothing(timeout=0.1)

    event_id = await publish(membership.workspace_id, "status", conversation_id=5)
    await get_channel_layer().group_send(workspace_group(membership.workspace_id), {"type": "live.wakeup"})
    received = await socket.receive_json_from(timeout=2)

    assert received["id"] == event_id and received["kind"] == "status"
    assert await socket.receive_nothing(timeout=1.3)  # the 1 s fallback poll does not repeat it
    await socket.disconnect()


async def test_without_a_wake_up_the_poll_still_delivers(settings, monkeypatch):
    # As with the in-memory layer of another process: the wake-up never arrives.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    monkeypatch.setattr("apps.live.services._ring", lambda workspace_id: None)
    membership = await member()
    socket = communicator(membership.user)
    await socket.connect()

    event_id = await publish(membership.workspace_id)

    assert (await socket.receive_json_from(timeout=3))["id"] == event_id
    await socket.disconnect()


async def test_the_asgi_app_admits_a_session_logged_in_on_the_login_page():
    from django.conf import settings
    from django.test import Client

    from chatbot.asgi import application as asgi_application

    membership = await member()
    client = Client()
    await sync_to_async(client.force_login)(membership.user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    socket = WebsocketCommunicator(
        asgi_application,
        "/ws/live/",
        headers=[
            (b"cookie", cookie.encode()),
            (b"origin", b"http://localhost:8000"),
            (b"host", b"localhost"),
        ],
    )

    connected, _ = await socket.connect()

    assert connected
    await socket.disconnect()
