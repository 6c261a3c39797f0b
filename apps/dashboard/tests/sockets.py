"""A /ws/live/ socket opened through the whole ASGI app (origin check, session cookie, consumer)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from chatbot.asgi import application

ORIGIN = b"https://localhost"  # the host's own https origin


@sync_to_async
def member(role: str = Role.VIEWER, **kwargs):
    return MembershipFactory.create(role=role, **kwargs)


@sync_to_async
def logged_in(user) -> Client:
    """A browser logged in on the login page: its session cookie is what the socket presents."""
    client = Client()
    client.force_login(user)
    return client


def socket_for(client: Client, query: str = "", origin: bytes = ORIGIN) -> WebsocketCommunicator:
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(
        application,
        f"/ws/live/{query}",
        headers=[(b"cookie", cookie.encode()), (b"origin", origin), (b"host", b"localhost")],
    )
