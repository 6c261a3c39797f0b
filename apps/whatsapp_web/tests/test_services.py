from __future__ import annotations

from typing import Any

import pytest

from apps.conversations.models import Message
from apps.conversations.tests.factories import ConversationFactory, outbound_message
from apps.live.models import LiveEvent
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.services import web_messages_store, web_session_state_set, web_statuses_store

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


def test_receipts_move_our_message_forward_only_and_settle_a_send_whose_answer_is_late(
    web_channel: Channel,
) -> None:
    conversation = ConversationFactory.create(channel=web_channel, workspace=web_channel.workspace)
    sent = outbound_message(
        conversation=conversation, wamid="true_1@c.us_3EB0A", send_state="sent", status="sent"
    )
    # The receipt came before the browser's answer reached the sender: known by its uid only.
    late = outbound_message(conversation=conversation, send_state="processing")
    ack = {"kind": "ack", "t": 1764900000}

    changed = web_statuses_store(
        channel=web_channel,
        events=[{**ack, "ack": 3, "ids": [sent.wamid]}, {**ack, "ack": 1, "ids": ["true_1@c.us_3EB0B"]}],
        uids={"true_1@c.us_3EB0B": str(late.uid)},
    )
    older = web_statuses_store(channel=web_channel, events=[{**ack, "ack": 2, "ids": [sent.wamid]}], uids={})

    assert changed == 2
    assert older == 0  # delivered after read: the tick stays read
    sent.refresh_from_db()
    late.refresh_from_db()
    assert sent.status == "read"
    assert (late.status, late.send_state, late.wamid) == ("sent", "sent", "true_1@c.us_3EB0B")
    assert LiveEvent.objects.filter(kind="status", conversation_id=conversation.pk).exists()


def test_a_pairing_code_is_kept_while_the_qr_rotates_and_dropped_once_linked(web_channel: Channel) -> None:
    from apps.whatsapp_web.services import web_session_pairing_set

    web_session_state_set(channel=web_channel, state="qr", qr="2@one")
    web_session_pairing_set(channel=web_channel, code="WXYZ-9876")
    web_session_state_set(channel=web_channel, state="qr", qr="2@two")
    assert WebSession.objects.get(channel=web_channel).pairing_code == "WXYZ-9876"

    web_session_state_set(channel=web_channel, state="connected")

    assert WebSession.objects.get(channel=web_channel).pairing_code == ""
    web_session_pairing_set(channel=web_channel, code="LATE1234")  # too late: nothing to link
    assert WebSession.objects.get(channel=web_channel).pairing_code == ""


def test_a_failed_pairing_request_says_why(web_channel: Channel) -> None:
    from apps.whatsapp_web.services import web_session_pairing_set

    web_session_state_set(channel=web_channel, state="qr", qr="2@one")
    web_session_pairing_set(channel=web_channel, error="rate limited")

    session = WebSession.objects.get(channel=web_channel)
    assert (session.pairing_code, session.detail) == ("", "pairing code failed: rate limited")
