from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.whatsapp_web.inbound import (
    chat_id_of,
    chat_id_of_message,
    cloud_message,
    inbound_messages,
    status_updates,
)

WAMID = "false_5215512345678@c.us_3A0000000000000001"


def event(**extra: object) -> dict[str, object]:
    return {
        "id": WAMID,
        "from": "5215512345678@c.us",
        "type": "chat",
        "body": "hola",
        "t": 1764900000,
        **extra,
    }


def test_a_text_becomes_the_cloud_apis_text_from_the_customers_wa_id() -> None:
    [message] = inbound_messages([event(notifyName="Ana")])

    assert message.wamid == WAMID
    assert message.type == "text"
    assert message.body == "hola"
    assert message.from_wa_id == "5215512345678"
    assert message.from_bsuid == ""
    assert message.from_name == "Ana"
    assert message.timestamp == datetime.fromtimestamp(1764900000, tz=UTC)


def test_every_message_of_a_burst_is_kept_in_order() -> None:
    burst = [event(id=f"false_5215512345678@c.us_3A{i}", body=f"m{i}") for i in range(3)]

    assert [m.body for m in inbound_messages(burst)] == ["m0", "m1", "m2"]


@pytest.mark.parametrize(
    "extra",
    [
        {"fromMe": True},
        {"isGroup": True, "from": "120363000000000000@g.us"},
        {"from": "status@broadcast", "isStatus": True},
        {"from": "120363000000000000@g.us"},
        {"from": "not-an-id"},
    ],
)
def test_our_own_group_and_status_messages_are_not_customers(extra: dict[str, object]) -> None:
    assert inbound_messages([event(**extra)]) == []


def test_a_linked_id_sender_is_kept_as_its_business_scoped_id() -> None:
    [message] = inbound_messages([event(**{"from": "987654321@lid"})])

    assert message.from_wa_id == ""
    assert message.from_bsuid == "987654321@lid"


def test_media_keeps_its_caption_and_type() -> None:
    [image] = inbound_messages([event(type="image", caption="mi recibo", mimetype="image/jpeg")])
    [voice] = inbound_messages([event(type="ptt", mimetype="audio/ogg")])

    assert (image.type, image.body) == ("image", "mi recibo")
    assert image.raw["image"] == {"id": WAMID, "mime_type": "image/jpeg", "caption": "mi recibo"}
    assert voice.type == "audio"
    assert voice.raw["audio"]["voice"] is True


def test_a_reaction_names_the_message_it_reacts_to() -> None:
    [reaction] = inbound_messages([event(type="reaction", body="👍", reactionTo=WAMID + "X")])

    assert (reaction.type, reaction.body, reaction.reply_to_wamid) == ("reaction", "👍", WAMID + "X")


def test_a_quoted_reply_location_and_unknown_type() -> None:
    [quoted] = inbound_messages([event(quotedMsgId="false_x_1")])
    [place] = inbound_messages([event(type="location", body="Oficina", lat=19.4, lng=-99.1)])
    [card] = inbound_messages([event(type="vcard", body="BEGIN:VCARD\nFN:Luis\nEND:VCARD")])
    [other] = inbound_messages([event(type="poll_creation")])

    assert quoted.reply_to_wamid == "false_x_1"
    assert place.body == "Oficina"
    assert card.body == "Luis"
    assert other.type == "unsupported"


def test_a_message_without_id_or_time_is_skipped() -> None:
    assert inbound_messages([event(id=""), event(t=None), "junk"]) == []  # type: ignore[list-item]
    assert cloud_message(event(fromMe=True)) is None


def test_chat_ids() -> None:
    assert chat_id_of("+52 1 55 1234 5678") == "5215512345678@c.us"
    assert chat_id_of("987@lid") == "987@lid"
    assert chat_id_of_message(WAMID) == "5215512345678@c.us"
    assert chat_id_of_message("wamid.HBgL") == ""
    with pytest.raises(ValueError, match="not a WhatsApp id"):
        chat_id_of("abc")


def test_acks_of_our_messages_become_the_cloud_statuses() -> None:
    ours = "true_5215512345678@c.us_3EB0AA"
    events = [
        {"kind": "ack", "ack": 1, "ids": [ours], "t": 1764900001},
        {"kind": "ack", "ack": 2, "ids": [ours, "false_5215512345678@c.us_3A1"], "t": 1764900002},
        {"kind": "ack", "ack": 3, "ids": [ours], "t": 1764900003},
        {"kind": "ack", "ack": 4, "ids": [ours], "t": 1764900004},
        {"kind": "ack", "ack": -1, "ids": [ours], "t": 1764900005},
        {"kind": "ack", "ack": 0, "ids": [ours], "t": 1764900006},  # pending: no news
        {"kind": "ack", "ack": 2, "ids": "junk"},
    ]

    updates = status_updates(events, {ours: "uid-7"})

    assert [(u.wamid, u.status) for u in updates] == [
        (ours, "sent"),
        (ours, "delivered"),
        (ours, "read"),
        (ours, "played"),
        (ours, "failed"),
    ]
    assert {u.callback_data for u in updates} == {"uid-7"}
    assert {u.recipient_id for u in updates} == {"5215512345678"}
    assert updates[1].timestamp == datetime.fromtimestamp(1764900002, tz=UTC)
    assert updates[-1].error_title == "WhatsApp Web could not send the message"
    assert status_updates(events[1:2], {})[0].callback_data == ""
