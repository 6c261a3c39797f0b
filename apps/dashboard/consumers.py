"""The live feed: a member's socket receives their workspace's events after the id it last saw.

A socket outlives the checks made when it opened, so it checks again that its login still
stands (not logged out, password unchanged, user active) and that the user is still a member
of the workspace: before it forwards events, and at least every LIVE_SOCKET_RECHECK_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import BaseChannelLayer, InMemoryChannelLayer
from django.conf import settings

from apps.accounts.models import User, Workspace
from apps.accounts.selectors import is_member, membership_for, session_login_user
from apps.live.selectors import live_events_since
from apps.live.services import workspace_group

# The embedded in-memory channel layer does not cross processes, so a wake-up from a worker
# never arrives there: the socket also looks at the table this often. A shared layer (Redis) brings
# every wake-up; there the poll (LIVE_SAFETY_POLL_SECONDS) only catches one lost to a Redis restart.
POLL_SECONDS = 1.0
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
P = ParamSpec("P")
R = TypeVar("R")


def _after(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin-1")).get("after", ["0"])
    try:
        return max(int(values[0]), 0)
    except ValueError:
        return 0


def _poll_seconds(layer: BaseChannelLayer) -> float:
    """How often a socket looks at the table (and re-checks its login, whichever is sooner)."""
    poll = (
        POLL_SECONDS if isinstance(layer, InMemoryChannelLayer) else float(settings.LIVE_SAFETY_POLL_SECONDS)
    )
    return min(poll, float(settings.LIVE_SOCKET_RECHECK_SECONDS))


def _db(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """channels' database_sync_to_async (which closes stale connections around the call), typed:
    channels ships no type hints."""
    wrapped: Callable[P, Awaitable[R]] = database_sync_to_async(function)
    return wrapped


@_db
def _membership_workspace(user: User, slug: str | None) -> Workspace | None:
    membership = membership_for(user=user, workspace_slug=slug)
    return membership.workspace if membership else None


@_db
def _refusal(*, session_key: str | None, user_id: int, workspace_id: int) -> int | None:
    """The close code for a socket that may no longer listen, or None while it may."""
    user = session_login_user(session_key=session_key)
    if user is None or user.pk != user_id:
        return CLOSE_UNAUTHENTICATED
    if not is_member(user_id=user_id, workspace_id=workspace_id):
        return CLOSE_FORBIDDEN
    return None


@_db
def _events(workspace: Workspace, after_id: int) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "kind": e.kind, "conversation_id": e.conversation_id, "payload": e.payload}
        for e in live_events_since(workspace=workspace, after_id=after_id)
    ]


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels ships no type hints
    workspace: Workspace | None = None
    workspace_id: int | None = None
    user_id = 0
    after_id = 0
    checked_at = 0.0
    ended = False
    _poller: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        slug = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("workspace", [None])[0]
        self.workspace = await _membership_workspace(user, slug)
        if self.workspace is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.workspace_id = self.workspace.pk
        self.user_id = user.pk
        self.checked_at = time.monotonic()
        self.after_id = _after(self.scope.get("query_string", b""))
        self._lock = asyncio.Lock()
        await self.channel_layer.group_add(workspace_group(self.workspace_id), self.channel_name)
        await self.accept()
        await self._deliver()
        self._poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.workspace_id is not None:
            await self.channel_layer.group_discard(workspace_group(self.workspace_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page only listens; anything it sends is ignored."""

    async def live_wakeup(self, event: dict[str, Any]) -> None:
        await self._deliver()

    async def _poll(self) -> None:
        interval = _poll_seconds(self.channel_layer)
        # Sockets opened together (every agent's page after a ws restart) spread their polls out.
        await asyncio.sleep(random.uniform(interval / 2, interval))  # noqa: S311 - not a secret
        while not self.ended:
            if time.monotonic() - self.checked_at >= settings.LIVE_SOCKET_RECHECK_SECONDS:
                await self._still_allowed()
            await self._deliver()
            await asyncio.sleep(interval)

    async def _still_allowed(self) -> bool:
        assert self.workspace_id is not None  # noqa: S101 - set before accept
        session = self.scope.get("session")
        code = await _refusal(
            session_key=getattr(session, "session_key", None),
            user_id=self.user_id,
            workspace_id=self.workspace_id,
        )
        self.checked_at = time.monotonic()
        if code is not None and not self.ended:
            self.ended = True
            await self.close(code=code)
        return code is None

    async def _deliver(self) -> None:
        # One delivery at a time, so a wake-up racing the poll never sends an event twice.
        assert self.workspace is not None  # noqa: S101 - set before accept
        async with self._lock:
            if self.ended:
                return
            events = await _events(self.workspace, self.after_id)
            # A removed member or an ended login must not hear one more event.
            if not events or not await self._still_allowed():
                return
            for event in events:
                await self.send_json(event)
                self.after_id = event["id"]
