from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.conversations.events import InboundMessage, PreferenceUpdate, StatusUpdate
from apps.conversations.models import Message
from apps.whatsapp.payloads import (
    BSUID_MAX,
    TYPE_MAX,
    WA_ID_MAX,
    WAMID_MAX,
    PayloadError,
    delivery_account_ids,
    delivery_load,
    delivery_parse,
    delivery_phone_number_ids,
    message_body,
)

PAYLOADS = Path(__file__).parent / "payloads"
SHOP = "106540352242922"
RESTAURANT = "109876543210987"


def load(name: str) -> dict:
    return delivery_load((PAYLOADS / name).read_bytes())


def raw_messages(delivery: dict, entry: int = 0) -> list[dict]:
    return delivery["entry"][entry]["changes"][0]["value"]["messages"]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def envelope(value: dict, field: str = "messages", phone_number_id: str = SHOP) -> dict:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone_number_id}, **value}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}],
    }


def parsed_messages(name: str) -> list[InboundMessage]:
    return delivery_parse(load(name))[SHOP].messages


def test_a_text_message_becomes_one_inbound_message_with_the_senders_ids_and_name():
    delivery = load("text.json")

    batches = delivery_parse(delivery)

    assert list(batches) == [SHOP]
    assert batches[SHOP].statuses == [] and batches[SHOP].preferences == []
    assert batches[SHOP].messages == [
        InboundMessage(
            wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            type="text",
            timestamp=datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC),
            from_wa_id="16505551234",
            from_bsuid="US.13491208655302741918",
            from_name="Sheena Nelson",
            body="Does it come in another color?",
            reply_to_wamid="",
            raw=raw_messages(delivery)[0],
        )
    ]


def test_a_batched_delivery_keeps_every_message_of_every_entry_grouped_by_phone_number():
    batches = delivery_parse(load("batch.json"))

    assert sorted(batches) == [SHOP, RESTAURANT]
    assert [(m.from_wa_id, m.from_name, m.body, m.timestamp) for m in batches[SHOP].messages] == [
        ("16505551234", "Sheena Nelson", "Hi, are you open today?", at(1749416383)),
        ("5215512345678", "Pablo Morales", "Hola, ¿tienen envío a domicilio?", at(1749416384)),
        ("16505551234", "Sheena Nelson", "And tomorrow?", at(1749416390)),
    ]
    assert [(m.from_wa_id, m.from_name, m.body) for m in batches[RESTAURANT].messages] == [
        ("34612345678", "Lucía Pérez", "Quiero reservar una mesa")
    ]


def test_the_addressed_phone_numbers_and_business_accounts_are_collected_from_every_entry():
    delivery = load("batch.json")

    assert delivery_phone_number_ids(delivery) == {SHOP, RESTAURANT}
    assert delivery_account_ids(delivery) == {"102290129340398", "104455667788990"}


def test_statuses_carry_the_error_code_and_title_and_the_callback_data():
    delivery = load("statuses.json")
    raw = delivery["entry"][0]["changes"][0]["value"]["statuses"]

    batch = delivery_parse(delivery)[SHOP]

    assert batch.messages == []
    assert batch.statuses == [
        StatusUpdate(
            wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI0RkY5NjQ0QjU3QjQ5ODg0NUIA",
            status="delivered",
            timestamp=at(1749416400),
            recipient_id="16505551234",
            raw=raw[0],
        ),
        StatusUpdate(
            wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI0RkY5NjQ0QjU3QjQ5ODg0NUIA",
            status="read",
            timestamp=at(1749416460),
            recipient_id="16505551234",
            raw=raw[1],
        ),
        StatusUpdate(
            wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJBMjk4RkI2NzdDMkYwQjdDRUEA",
            status="failed",
            timestamp=at(1749416401),
            recipient_id="16505551234",
            callback_data="6f0e9a52-3c41-4a8e-9d7b-2f5c1e8a0b34",
            error_code=131047,
            error_title="Re-engagement message",
            raw=raw[2],
        ),
    ]


def test_a_reaction_has_the_emoji_as_body_and_points_at_the_reacted_message():
    [reaction] = parsed_messages("reaction.json")

    assert (reaction.type, reaction.body) == ("reaction", "👍")
    assert reaction.reply_to_wamid == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI0RkY5NjQ0QjU3QjQ5ODg0NUIA"


def test_image_and_document_have_their_caption_as_body_and_keep_the_media_fields_in_raw():
    image, document = parsed_messages("media.json")

    assert (image.type, image.body) == ("image", "This is the one I want")
    assert (document.type, document.body) == ("document", "")
    assert image.raw["image"] == {
        "caption": "This is the one I want",
        "mime_type": "image/jpeg",
        "sha256": "ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWY=",
        "id": "1003383421387256",
    }
    assert document.raw["document"]["filename"] == "invoice-0042.pdf"
    assert document.raw["document"]["id"] == "1127348412345678"


def test_interactive_replies_have_the_chosen_title_as_body_reply_to_the_prompt_and_keep_the_ids():
    button, row = parsed_messages("interactive.json")

    assert (button.type, button.body) == ("interactive", "Tomorrow 10:00")
    assert button.reply_to_wamid == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJDQUNIQ0FDSENBQ0hDQUNIAA=="
    assert button.raw["interactive"]["button_reply"]["id"] == "book-tomorrow"
    assert (row.type, row.body) == ("interactive", "Short haircut")
    assert row.raw["interactive"]["list_reply"]["id"] == "haircut-short"


def test_a_template_quick_reply_button_has_its_text_as_body_and_keeps_the_payload():
    [button] = parsed_messages("button.json")

    assert (button.type, button.body) == ("button", "Stop promotions")
    assert button.reply_to_wamid == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJURU1QTEFURVRFTVBMQVRFAA=="
    assert button.raw["button"]["payload"] == "STOP_PROMOTIONS"


def test_a_location_reads_as_its_name_and_address_or_else_its_coordinates():
    place, pin = parsed_messages("location.json")

    assert (place.type, place.body) == (
        "location",
        "Museo Frida Kahlo, Londres 247, Del Carmen, Coyoacán, CDMX",
    )
    assert (pin.type, pin.body) == ("location", "19.4326,-99.1332")


def test_shared_contacts_read_as_their_formatted_names():
    [shared] = parsed_messages("contacts.json")

    assert (shared.type, shared.body) == ("contacts", "Barbara J. Johnson, Luis García")
    assert shared.from_name == "Sheena Nelson"


def test_unknown_and_unsupported_types_are_kept_as_given_with_an_empty_body():
    future, unsupported = parsed_messages("unknown_type.json")

    assert (future.type, future.body) == ("future_type", "")
    assert future.raw["future_type"] == {"hologram": {"id": "9988776655", "duration_ms": 4200}}
    assert (unsupported.type, unsupported.body) == ("unsupported", "")


def test_a_message_with_only_a_business_scoped_user_id_is_kept_with_the_profile_name():
    [message] = parsed_messages("bsuid_only.json")

    assert (message.from_wa_id, message.from_bsuid) == ("", "US.8877665544332211009")
    assert message.from_name == "gatito_99"
    assert message.body == "Hi! I found you through your username"


def test_the_sender_ids_missing_from_the_message_are_taken_from_its_contact():
    message = {"id": "wamid.A", "timestamp": "1749416383", "type": "text", "text": {"body": "hi"}}
    delivery = envelope(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5215511112222", "user_id": "US.1"}],
            "messages": [
                {**message, "from": "5215511112222"},
                {**message, "id": "wamid.B", "from_user_id": "US.1"},
            ],
        }
    )

    by_phone, by_user_id = delivery_parse(delivery)[SHOP].messages

    assert (by_phone.from_wa_id, by_phone.from_bsuid, by_phone.from_name) == ("5215511112222", "US.1", "Ana")
    assert (by_user_id.from_wa_id, by_user_id.from_bsuid, by_user_id.from_name) == (
        "5215511112222",
        "US.1",
        "Ana",
    )


def test_user_preferences_become_stop_and_resume_updates():
    stop = delivery_parse(load("user_preferences_stop.json"))[SHOP]
    resume = delivery_parse(load("user_preferences_resume.json"))[SHOP]

    assert stop.messages == [] and stop.statuses == []
    assert stop.preferences == [PreferenceUpdate(value="stop", timestamp=at(1749416600), wa_id="16505551234")]
    assert resume.preferences == [
        PreferenceUpdate(value="resume", timestamp=at(1749416700), wa_id="16505551234")
    ]


def test_a_preference_of_a_user_known_only_by_user_id_keeps_the_user_id():
    delivery = envelope(
        {
            "user_preferences": [
                {"user_id": "US.9", "value": "stop", "category": "marketing_messages", "timestamp": 5}
            ]
        },
        field="user_preferences",
    )

    assert delivery_parse(delivery)[SHOP].preferences == [
        PreferenceUpdate(value="stop", timestamp=at(5), bsuid="US.9")
    ]


def test_changes_of_other_fields_are_ignored():
    delivery = envelope(
        {"event": "APPROVED", "message_template_id": 1}, field="message_template_status_update"
    )

    assert delivery_parse(delivery) == {}


def test_malformed_items_are_skipped_with_a_warning_and_the_rest_of_the_delivery_is_kept(caplog):
    good = {
        "from": "16505551234",
        "id": "wamid.GOOD",
        "timestamp": "1749416383",
        "type": "text",
        "text": {"body": "ok"},
    }
    delivery = envelope(
        {
            "contacts": "not a list",
            "messages": [
                "not an object",
                {**good, "id": 12345},
                {**good, "id": "wamid." + "x" * WAMID_MAX},
                {**good, "id": "wamid.NOSENDER", "from": None},
                {**good, "id": "wamid.NOTIME", "timestamp": "soon"},
                {**good, "id": "wamid.FAR", "timestamp": "9" * 30},
                {**good, "id": "wamid.BOOLTIME", "timestamp": True},
                {**good, "id": "wamid.NOTYPE", "type": None},
                {**good, "id": "wamid.BADBODY", "text": {"body": ["not", "text"]}},
                {**good, "id": "wamid.BADCONTEXT", "context": "wamid.X"},
                good,
            ],
            "statuses": [
                None,
                {"id": "wamid.S", "status": "read"},
                {"id": "wamid.S", "status": 3, "timestamp": "1"},
            ],
        }
    )
    delivery["entry"][0]["changes"] += [
        "not an object",
        {"field": "messages", "value": []},
        {"field": "messages", "value": {"metadata": {}, "messages": [good]}},
        {
            "field": "messages",
            "value": {"metadata": {"phone_number_id": RESTAURANT}, "messages": {"not": "a list"}},
        },
        {
            "field": "user_preferences",
            "value": {
                "metadata": {"phone_number_id": SHOP},
                "user_preferences": [
                    {"wa_id": "16505551234", "value": "maybe", "timestamp": 1},
                    {"value": "stop", "timestamp": 1},
                    {"wa_id": "16505551234", "value": "stop", "timestamp": "1"},
                ],
            },
        },
    ]

    with caplog.at_level(logging.WARNING, logger="apps.whatsapp.payloads"):
        batches = delivery_parse(delivery)

    assert [(m.wamid, m.body, m.reply_to_wamid) for m in batches[SHOP].messages] == [
        ("wamid.BADBODY", "", ""),
        ("wamid.BADCONTEXT", "ok", ""),
        ("wamid.GOOD", "ok", ""),
    ]
    assert batches[SHOP].messages[-1].from_name == ""
    assert batches[SHOP].statuses == []
    assert batches[SHOP].preferences == [PreferenceUpdate(value="stop", timestamp=at(1), wa_id="16505551234")]
    assert batches[RESTAURANT].messages == []
    assert len(caplog.records) == 18


def test_an_escaped_nul_is_dropped_but_an_escaped_backslash_before_u0000_is_kept():
    body = json.dumps(envelope({"messages": [{"text": {"body": "a\x00b"}, "note": "c\\u0000d", "x\x00": 1}]}))

    delivery = delivery_load(body.encode())

    [message] = delivery["entry"][0]["changes"][0]["value"]["messages"]
    assert message == {"text": {"body": "ab"}, "note": "c\\u0000d", "x": 1}


def test_an_overlong_type_is_cut_to_the_column_size_and_an_overlong_sender_is_refused():
    base = {"id": "wamid.A", "timestamp": "1", "text": {"body": "hi"}}
    delivery = envelope(
        {
            "messages": [
                {**base, "from": "1", "type": "t" * 40},
                {**base, "id": "wamid.B", "from": "1" * (WA_ID_MAX + 1), "type": "text"},
                {**base, "id": "wamid.C", "from_user_id": "U" * (BSUID_MAX + 1), "type": "text"},
            ]
        }
    )

    [message] = delivery_parse(delivery)[SHOP].messages

    assert message.type == "t" * TYPE_MAX
    assert message.raw["type"] == "t" * 40


def test_the_size_limits_are_those_of_the_message_columns():
    assert Message._meta.get_field("wamid").max_length == WAMID_MAX
    assert Message._meta.get_field("reply_to_wamid").max_length == WAMID_MAX
    assert Message._meta.get_field("from_wa_id").max_length == WA_ID_MAX
    assert Message._meta.get_field("from_bsuid").max_length == BSUID_MAX
    assert Message._meta.get_field("type").max_length == TYPE_MAX


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account"}',
        b'{"object": "whatsapp_business_account", "entry": {"changes": []}}',
        b'{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}',
        b'{"object": "whatsapp_business_account", "entry": ["x"]}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": {}}]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_body_without_metas_outer_shape_is_refused(body):
    with pytest.raises(PayloadError):
        delivery_load(body)


def test_an_empty_delivery_has_nothing_to_store():
    delivery = delivery_load(b'{"object": "whatsapp_business_account", "entry": []}')

    assert delivery_parse(delivery) == {}
    assert delivery_phone_number_ids(delivery) == set()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text"},
        {"type": "text", "text": "hello"},
        {"type": "interactive", "interactive": {"type": 5}},
        {"type": "interactive", "interactive": {"type": "button_reply", "button_reply": ["Yes"]}},
        {"type": "button", "button": {"text": None}},
        {"type": "reaction", "reaction": {"emoji": 1, "message_id": 2}},
        {"type": "image", "image": None},
        {"type": "location", "location": {"latitude": True, "longitude": 1.5}},
        {"type": "contacts", "contacts": 5},
        {"type": "contacts", "contacts": {"name": {"formatted_name": "Ana"}}},
        {"type": "contacts", "contacts": ["Ana", {"name": "Ana"}]},
        {"type": "order", "order": {"catalog_id": "1", "product_items": []}},
        {"type": "system", "system": {"body": 5}},
    ],
)
def test_content_of_the_wrong_type_or_without_text_reads_as_an_empty_body(message):
    assert message_body(message) == ("", "")
