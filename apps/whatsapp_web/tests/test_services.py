from __future__ import annotations

from typing import Any

import pytest

from apps.conversations.models import Message
from apps.live.models import LiveEvent
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.services import web_messages_store, web_session_state_set

pytestmark = pytest.mark.django_db


def message(i: int, wa_id: str = "5215512345678") -> dict[str, Any]:
    chat = f"{wa_id}@c.us"
    return {"id": f"false_{chat}_3A{i}", "from": chat, "type": "chat", "body": f"m{i}", "t": 1764900000 + i}


def test_a_burst_is_stored_once_each_even_when_seen_twice(
    web_channel: Channel, django_capture_on_commit_callbacks: Any
) -> None:
    burst = [message(1), message(2), message(3)]

    with django_capture_on_commit_callbacks() as callbacks:
        first = web_messages_store(channel=web_channel, events=burst)
    again = web_messages_store(channel=web_channel, events=[*burst, {"fromMe": True, "id": "x"}])

    assert len(first) == 3
    assert again == []
    rows = Message.objects.filter(channel=web_channel).order_by("pk")
    assert [(m.body, m.from_wa_id, m.direction) for m in rows] == [
        ("m1", "5215512345678", "in"),
        ("m2", "5215512345678", "in"),
        ("m3", "5215512345678", "in"),
    ]
    assert callbacks  # processing is enqueued after commit, as for the webhook
    web_channel.refresh_from_db()
    assert web_channel.last_webhook_at is not None


def test_the_same_message_id_on_two_channels_is_two_messages(web_channel: Channel) -> None:
    other = ChannelFactory.create(kind=Channel.Kind.WEB, phone_number_id="")

    web_messages_store(channel=web_channel, events=[message(1)])
    web_messages_store(channel=other, events=[message(1)])

    assert Message.objects.filter(channel=web_channel).count() == 1
    assert Message.objects.filter(channel=other, workspace=other.workspace).count() == 1


def test_a_state_change_is_recorded_pushed_live_and_sets_the_health(web_channel: Channel) -> None:
    assert web_session_state_set(channel=web_channel, state="qr", qr="2@ref,key") is True
    assert web_session_state_set(channel=web_channel, state="qr", qr="2@ref,key") is False
    assert web_session_state_set(channel=web_channel, state="connected", whatsapp_version="2.3000.1") is True

    session = WebSession.objects.get(channel=web_channel)
    assert (session.state, session.qr, session.whatsapp_version) == ("connected", "", "2.3000.1")
    web_channel.refresh_from_db()
    assert web_channel.health == Channel.Health.OK
    events = LiveEvent.objects.filter(workspace_id=web_channel.workspace_id, kind="web_session")
    assert [e.payload["state"] for e in events.order_by("pk")] == ["qr", "connected"]

    web_session_state_set(channel=web_channel, state="logged_out")
    web_channel.refresh_from_db()
    assert web_channel.health == Channel.Health.UNHEALTHY
    assert "logged_out" in web_channel.health_detail


def test_an_unknown_state_is_refused(web_channel: Channel) -> None:
    with pytest.raises(ValueError, match="unknown WhatsApp Web state"):
        web_session_state_set(channel=web_channel, state="dancing")
    assert not WebSession.objects.exists()


def test_a_logout_raises_one_alert_for_the_workspace(web_channel: Channel) -> None:
    from apps.alerts.models import Alert

    web_session_state_set(channel=web_channel, state="connected")
    web_session_state_set(channel=web_channel, state="logged_out")
    web_session_state_set(channel=web_channel, state="logged_out", detail="again")  # same state: no new alert

    [alert] = Alert.objects.all()
    assert (alert.workspace_id, alert.channel_id, alert.kind, alert.severity) == (
        web_channel.workspace_id,
        web_channel.pk,
        "whatsapp_web_lost",
        "high",
    )
    assert "scan its new QR code" in alert.summary


def test_a_conflict_or_a_qr_raises_no_alert(web_channel: Channel) -> None:
    from apps.alerts.models import Alert

    for state in ("qr", "connected", "conflict", "disconnected", "connected"):
        web_session_state_set(channel=web_channel, state=state)

    assert not Alert.objects.exists()
