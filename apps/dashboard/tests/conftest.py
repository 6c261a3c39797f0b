from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import Membership, Role, Workspace
from apps.accounts.tests.factories import MembershipFactory
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory


@pytest.fixture
def page_client(workspace):
    """A browser-like client logged in (session) as a member of `workspace` with `role`."""

    def make(role: str = Role.AGENT, ws: Workspace | None = None) -> tuple[Client, Membership]:
        membership = MembershipFactory.create(workspace=ws or workspace, role=role)
        client = Client()
        client.force_login(membership.user)
        return client, membership

    return make


@pytest.fixture
def conversation(workspace):
    return ConversationFactory.create(channel=ChannelFactory.create(workspace=workspace))
