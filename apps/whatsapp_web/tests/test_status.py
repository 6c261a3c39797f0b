from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.whatsapp.api.serializers import WEB_STATES
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.services import web_session_state_set

pytestmark = pytest.mark.django_db


def test_the_apis_states_are_the_models() -> None:
    assert WEB_STATES == list(WebSession.State.values)


def test_the_status_shows_the_web_session_without_its_qr(web_channel: Channel, member_client: Any) -> None:
    cloud = ChannelFactory.create(workspace=web_channel.workspace)
    web_session_state_set(channel=web_channel, state="qr", qr="2@secret-ref,key", whatsapp_version="2.3000.1")
    client, _ = member_client(Role.AGENT)

    body = client.get("/api/whatsapp/status").json()

    rows = {row["id"]: row for row in body["channels"]}
    web = rows[web_channel.pk]["web_session"]
    assert (web["state"], web["stale"], web["whatsapp_version"], web["reconnects"]) == (
        "qr",
        False,
        "2.3000.1",
        0,
    )
    assert rows[cloud.pk]["web_session"] is None
    assert "secret-ref" not in str(body)


def test_a_session_without_heartbeat_is_stale(
    web_channel: Channel, member_client: Any, settings: Any
) -> None:
    web_session_state_set(channel=web_channel, state="connected")
    WebSession.objects.update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.WHATSAPP_WEB_STALE_SECONDS + 5)
    )
    fresh = ChannelFactory.create(workspace=web_channel.workspace, kind=Channel.Kind.WEB, phone_number_id="")
    client, _ = member_client(Role.AGENT)

    rows = {row["id"]: row for row in client.get("/api/whatsapp/status").json()["channels"]}

    assert rows[web_channel.pk]["web_session"]["stale"] is True
    assert rows[fresh.pk]["web_session"]["state"] == "starting"  # worker-web has not opened it yet


def test_another_workspaces_session_is_not_shown(web_channel: Channel, member_client: Any) -> None:
    web_session_state_set(channel=web_channel, state="connected")
    other = ChannelFactory.create(kind=Channel.Kind.WEB, phone_number_id="")
    web_session_state_set(channel=other, state="logged_out")
    client, _ = member_client(Role.AGENT)

    rows = client.get("/api/whatsapp/status").json()["channels"]

    assert [row["id"] for row in rows] == [web_channel.pk]
