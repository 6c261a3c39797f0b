from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.accounts.models import Role
from apps.accounts.services import member_remove, user_active_set
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from apps.dashboard.routing import websocket_urlpatterns
from apps.dashboard.tests.sockets import logged_in, member, socket_for
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
def publish(workspace_id: int, kind: str = "message", conversation_id: int | None = None) -> int:
    return live_publish(workspace_id=workspace_id, kind=kind, conversation_id=conversation_id).pk


async def test_anonymous_users_are_refused():
    socket = communicator(AnonymousUser())

    connected, code = await socket.connect()

    assert not connected and code == 4401
    await socket.disconnect()  # as the server does: the consumer ends, nothing waits on Redis


async def test_users_without_a_membership_are_refused():
    user = await sync_to_async(UserFactory.create)()
    socket = communicator(user)

    connected, code = await socket.connect()

    assert not connected and code == 4403
    await socket.disconnect()  # as the server does: the consumer ends, nothing waits on Redis


async def test_a_member_gets_events_of_their_workspace_only_after_the_given_id():
    membership = await member()
    other = await sync_to_async(WorkspaceFactory.create)()
    seen = await publish(membership.workspace_id)
    await publish(other.pk)
    wanted = await publish(membership.workspace_id, "conversation", conversation_id=42)
    socket = socket_for(await logged_in(membership.user), f"?after={seen}")

    connected, _ = await socket.connect()
    first = await socket.receive_json_from(timeout=3)

    assert connected
    assert first == {"id": wanted, "kind": "conversation", "conversation_id": 42, "payload": {}}
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


async def test_a_wake_up_delivers_new_events_and_no_event_twice():
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
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
    socket = socket_for(await logged_in(membership.user))
    await socket.connect()

    event_id = await publish(membership.workspace_id)

    assert (await socket.receive_json_from(timeout=3))["id"] == event_id
    await socket.disconnect()


async def test_the_asgi_app_admits_a_session_logged_in_on_the_login_page():
    membership = await member()
    socket = socket_for(await logged_in(membership.user), origin=b"https://localhost")

    connected, _ = await socket.connect()

    assert connected
    await socket.disconnect()


# --- an open socket keeps checking its login and membership (issue 10, item 5) ---------------
@sync_to_async
def remove(membership) -> None:
    owner = MembershipFactory.create(workspace=membership.workspace, role=Role.OWNER)
    member_remove(acting=owner, membership=membership)


async def closed_with(socket: WebsocketCommunicator, timeout: float) -> int:
    output = await socket.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    await socket.disconnect()  # as the server does after a close: the consumer ends
    return int(output["code"])


async def test_a_removed_member_hears_no_further_event_and_the_socket_closes_4403(settings):
    # Given a socket whose timed re-check is far away: only the check before forwarding acts
    settings.LIVE_SOCKET_RECHECK_SECONDS = 3600
    membership = await member()
    await sync_to_async(MembershipFactory.create)(user=membership.user)  # still a member elsewhere
    socket = socket_for(await logged_in(membership.user), f"?workspace={membership.workspace.slug}")
    await socket.connect()
    first = await publish(membership.workspace_id)
    assert (await socket.receive_json_from(timeout=3))["id"] == first

    # When they are removed from the workspace and a new event is published there
    await remove(membership)
    await publish(membership.workspace_id, "conversation", conversation_id=7)

    # Then the socket closes with 4403 and the event never reaches it
    assert await closed_with(socket, timeout=3) == 4403
    assert await socket.receive_nothing(timeout=1.5)  # nothing was sent after the close


async def test_a_quiet_socket_of_a_removed_member_closes_within_the_recheck_period(settings):
    settings.LIVE_SOCKET_RECHECK_SECONDS = 1
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    await socket.connect()

    await remove(membership)

    assert await closed_with(socket, timeout=4) == 4403


async def test_a_password_change_closes_the_users_open_socket_4401(settings):
    settings.LIVE_SOCKET_RECHECK_SECONDS = 1
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    await socket.connect()

    await sync_to_async(_change_password)(membership.user)

    assert await closed_with(socket, timeout=4) == 4401


def _change_password(user) -> None:
    user.set_password("a-new-long-passphrase-42")
    user.save()


async def test_deactivating_the_user_closes_their_socket_4401(settings):
    settings.LIVE_SOCKET_RECHECK_SECONDS = 1
    membership = await member()
    socket = socket_for(await logged_in(membership.user))
    await socket.connect()

    await sync_to_async(user_active_set)(user=membership.user, active=False)

    assert await closed_with(socket, timeout=4) == 4401


async def test_logging_out_of_the_dashboard_closes_that_sessions_socket_only(settings):
    settings.LIVE_SOCKET_RECHECK_SECONDS = 1
    membership = await member()
    browser, other_browser = await logged_in(membership.user), await logged_in(membership.user)
    socket, other_socket = socket_for(browser), socket_for(other_browser)
    await socket.connect()
    await other_socket.connect()

    await sync_to_async(browser.post)("/logout/")

    assert await closed_with(socket, timeout=4) == 4401
    event_id = await publish(membership.workspace_id)
    assert (await other_socket.receive_json_from(timeout=3))["id"] == event_id
    await other_socket.disconnect()


async def test_a_member_of_two_workspaces_removed_from_one_keeps_the_other_socket(settings):
    settings.LIVE_SOCKET_RECHECK_SECONDS = 1
    kept = await member()
    removed = await sync_to_async(MembershipFactory.create)(user=kept.user, role=Role.VIEWER)
    browser = await logged_in(kept.user)
    socket = socket_for(browser, f"?workspace={kept.workspace.slug}")
    removed_socket = socket_for(browser, f"?workspace={removed.workspace.slug}")
    await socket.connect()
    await removed_socket.connect()

    await remove(removed)

    assert await closed_with(removed_socket, timeout=4) == 4403
    assert await socket.receive_nothing(timeout=2.5)  # two re-checks passed: still open
    event_id = await publish(kept.workspace_id)
    assert (await socket.receive_json_from(timeout=3))["id"] == event_id
    await socket.disconnect()
