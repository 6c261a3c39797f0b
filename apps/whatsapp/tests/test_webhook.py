from __future__ import annotations

import io
import json
import logging
import secrets
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Contact, Message
from apps.whatsapp.models import Channel
from apps.whatsapp.signature import sign
from apps.whatsapp.webhook import whatsapp_webhook
from chatbot import crypto

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]

URL = "/webhooks/whatsapp/"
PAYLOADS = Path(__file__).parent / "payloads"
SHOP, RESTAURANT = "106540352242922", "109876543210987"
SHOP_WABA = "102290129340398"
SHOP_SECRET, RESTAURANT_SECRET = "shop-app-secret-3f9a1c", "restaurant-app-secret-77b2e0"
TEXT_WAMID = "wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
# A stored message's processing goes to the broker alone, or in one task with others stored together.
INBOUND = ("inbound.message_process", "inbound.messages_process")


def channel_create(phone_number_id: str = SHOP, app_secret: str = SHOP_SECRET, **fields) -> Channel:
    fields.setdefault("verify_token", f"verify-{phone_number_id}")
    return Channel.objects.create(
        workspace=WorkspaceFactory.create(),
        kind="cloud",
        phone_number_id=phone_number_id,
        app_secret=app_secret,
        **fields,
    )


def fixture(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def post(body: bytes | dict, secret: str | None = SHOP_SECRET, client: Client | None = None, **headers):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    if secret is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(raw, secret)
    return (client or Client()).post(URL, data=raw, content_type="application/json", **headers)


def text_delivery(*messages: tuple[str, str, str]) -> dict:
    """A delivery of text messages given as (phone_number_id, wamid, body), one change per message."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": SHOP_WABA,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
                            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5215511112222"}],
                            "messages": [
                                {
                                    "from": "5215511112222",
                                    "id": wamid,
                                    "timestamp": "1749416383",
                                    "type": "text",
                                    "text": {"body": body},
                                }
                            ],
                        },
                    }
                    for number, wamid, body in messages
                ],
            }
        ],
    }


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


# --- receiving -----------------------------------------------------------------------------------------


def test_a_signed_text_message_is_stored_with_its_sender_and_answered_ok():
    channel = channel_create()

    response = post(fixture("text.json"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    message = Message.objects.get()
    assert (message.workspace_id, message.channel_id) == (channel.workspace_id, channel.pk)
    assert (message.direction, message.author, message.status) == ("in", "customer", "received")
    assert (message.type, message.body, message.wamid) == (
        "text",
        "Does it come in another color?",
        TEXT_WAMID,
    )
    assert (message.from_wa_id, message.from_bsuid, message.from_name) == (
        "16505551234",
        "US.13491208655302741918",
        "Sheena Nelson",
    )
    assert message.sent_by_customer_at == at(1749416383)
    assert (
        message.payload == json.loads(fixture("text.json"))["entry"][0]["changes"][0]["value"]["messages"][0]
    )
    channel.refresh_from_db()
    assert channel.last_webhook_at is not None


def test_processing_is_enqueued_only_after_the_delivery_commits(
    tasks_captured, django_capture_on_commit_callbacks
):
    channel_create()

    with django_capture_on_commit_callbacks() as callbacks:
        response = post(fixture("text.json"))

        assert tasks_captured.ids(*INBOUND) == []  # nothing reaches the broker while the transaction is open

    assert response.status_code == 200
    assert len(callbacks) == 1
    callbacks[0]()
    assert tasks_captured.ids(*INBOUND) == [Message.objects.get().pk]


def test_a_batched_delivery_stores_every_message_of_both_numbers_in_their_own_workspaces(
    tasks_captured, django_capture_on_commit_callbacks
):
    shop = channel_create(app_secret="one-app-for-both-numbers")
    restaurant = channel_create(RESTAURANT, app_secret="one-app-for-both-numbers")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(fixture("batch.json"), secret="one-app-for-both-numbers")

    assert response.status_code == 200
    assert list(
        Message.objects.order_by("pk").values_list("channel_id", "workspace_id", "from_name", "body")
    ) == [
        (shop.pk, shop.workspace_id, "Sheena Nelson", "Hi, are you open today?"),
        (shop.pk, shop.workspace_id, "Pablo Morales", "Hola, ¿tienen envío a domicilio?"),
        (shop.pk, shop.workspace_id, "Sheena Nelson", "And tomorrow?"),
        (restaurant.pk, restaurant.workspace_id, "Lucía Pérez", "Quiero reservar una mesa"),
    ]
    assert tasks_captured.ids(*INBOUND) == list(Message.objects.order_by("pk").values_list("pk", flat=True))
    assert Channel.objects.filter(last_webhook_at__isnull=False).count() == 2


def test_a_delivery_costs_one_channel_query_and_one_insert_per_number(django_assert_max_num_queries):
    channel_create(app_secret="one-app-for-both-numbers")
    channel_create(RESTAURANT, app_secret="one-app-for-both-numbers")
    Channel.objects.update(last_webhook_at=timezone.now())  # the heartbeat is fresh: no write for it

    # 1 channel query (the route cache is cold) + one INSERT per number + the delivery's transaction,
    # which this test's own transaction turns into a SAVEPOINT and a RELEASE.
    with django_assert_max_num_queries(1 + 2 + 2):
        response = post(fixture("batch.json"), secret="one-app-for-both-numbers")

    assert response.status_code == 200
    assert Message.objects.count() == 4


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("reaction.json", [("reaction", "👍", "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI0RkY5NjQ0QjU3QjQ5ODg0NUIA")]),
        ("media.json", [("image", "This is the one I want", ""), ("document", "", "")]),
        (
            "interactive.json",
            [
                (
                    "interactive",
                    "Tomorrow 10:00",
                    "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJDQUNIQ0FDSENBQ0hDQUNIAA==",
                ),
                (
                    "interactive",
                    "Short haircut",
                    "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJMSVNUTElTVExJU1RMSVNUAA==",
                ),
            ],
        ),
        (
            "button.json",
            [("button", "Stop promotions", "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJURU1QTEFURVRFTVBMQVRFAA==")],
        ),
        (
            "location.json",
            [
                ("location", "Museo Frida Kahlo, Londres 247, Del Carmen, Coyoacán, CDMX", ""),
                ("location", "19.4326,-99.1332", ""),
            ],
        ),
        ("contacts.json", [("contacts", "Barbara J. Johnson, Luis García", "")]),
        ("unknown_type.json", [("future_type", "", ""), ("unsupported", "", "")]),
    ],
)
def test_every_message_type_is_stored_with_its_readable_body(name, stored):
    channel_create()

    response = post(fixture(name))

    assert response.status_code == 200
    assert list(Message.objects.order_by("pk").values_list("type", "body", "reply_to_wamid")) == stored


def test_media_keep_their_id_mime_type_hash_and_filename_in_the_payload():
    channel_create()

    post(fixture("media.json"))

    image, document = Message.objects.order_by("pk")
    assert image.payload["image"]["id"] == "1003383421387256"
    assert image.payload["image"]["mime_type"] == "image/jpeg"
    assert image.payload["image"]["sha256"] == "ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWY="
    assert document.payload["document"]["filename"] == "invoice-0042.pdf"


def test_a_message_from_a_user_known_only_by_business_scoped_id_is_stored():
    channel_create()

    response = post(fixture("bsuid_only.json"))

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.from_wa_id, message.from_bsuid, message.from_name) == (
        "",
        "US.8877665544332211009",
        "gatito_99",
    )
    assert message.body == "Hi! I found you through your username"


def test_statuses_move_outbound_messages_forward_and_record_the_failure():
    channel = channel_create()
    outbound = {"workspace": channel.workspace, "channel": channel, "direction": "out", "author": "bot"}
    read = Message.objects.create(
        **outbound, wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI0RkY5NjQ0QjU3QjQ5ODg0NUIA", status="sent"
    )
    failed = Message.objects.create(
        **outbound, wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJBMjk4RkI2NzdDMkYwQjdDRUEA", status="sent"
    )

    response = post(fixture("statuses.json"))

    assert response.status_code == 200
    read.refresh_from_db()
    failed.refresh_from_db()
    assert (read.status, read.status_at, read.error_code) == ("read", at(1749416460), None)
    assert (failed.status, failed.status_at) == ("failed", at(1749416401))
    assert (failed.error_code, failed.error_title) == (131047, "Re-engagement message")
    assert Message.objects.filter(direction="in").count() == 0


def test_user_preferences_stop_and_resume_flip_the_contacts_marketing_opt_out():
    channel = channel_create()
    contact = Contact.objects.create(workspace=channel.workspace, wa_id="16505551234")

    stopped = post(fixture("user_preferences_stop.json"))
    contact.refresh_from_db()
    opted_out_after_stop = (contact.opted_out, contact.opt_out_source)
    resumed = post(fixture("user_preferences_resume.json"))
    contact.refresh_from_db()

    assert (stopped.status_code, resumed.status_code) == (200, 200)
    assert opted_out_after_stop == (True, "user_preferences")
    assert (contact.opted_out, contact.opted_out_at) == (False, None)
    assert Contact.objects.count() == 1
    assert not Message.objects.exists()


def test_the_same_delivery_twice_stores_one_row_and_enqueues_it_once(
    tasks_captured, django_capture_on_commit_callbacks
):
    channel_create()

    with django_capture_on_commit_callbacks(execute=True):
        first = post(fixture("text.json"))
    with django_capture_on_commit_callbacks(execute=True):
        second = post(fixture("text.json"))

    assert (first.status_code, second.status_code) == (200, 200)
    assert Message.objects.count() == 1
    assert tasks_captured.ids(*INBOUND) == [Message.objects.get().pk]


def test_a_message_repeated_inside_one_delivery_is_stored_once_next_to_a_new_one(
    tasks_captured, django_capture_on_commit_callbacks
):
    channel_create()
    with django_capture_on_commit_callbacks(execute=True):
        post(text_delivery((SHOP, "wamid.OLD", "stored before")))

    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            text_delivery(
                (SHOP, "wamid.OLD", "stored before"),
                (SHOP, "wamid.NEW", "new"),
                (SHOP, "wamid.NEW", "new"),
            )
        )

    assert response.status_code == 200
    assert sorted(Message.objects.values_list("wamid", flat=True)) == ["wamid.NEW", "wamid.OLD"]
    assert tasks_captured.ids(*INBOUND) == list(Message.objects.order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_from_five_threads_at_once_stores_one_row(postgres, tasks_captured):
    channel_create()
    body = fixture("text.json")
    barrier = threading.Barrier(5)
    statuses: list[int] = []

    def deliver() -> None:
        try:
            barrier.wait()
            statuses.append(post(body).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 5
    assert Message.objects.filter(wamid=TEXT_WAMID).count() == 1
    assert tasks_captured.ids(*INBOUND) == [Message.objects.get().pk]


def test_a_message_postgresql_cannot_store_as_sent_is_stored_cleaned_instead_of_failing_forever(postgres):
    channel_create()
    delivery = text_delivery((SHOP, "wamid.NUL", "before\x00after"))
    delivery["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = "text_" + "x" * 40

    response = post(delivery)

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.type == "text_" + "x" * 27
    assert message.payload["type"] == "text_" + "x" * 40


def test_a_database_error_answers_503_and_leaves_nothing_of_the_delivery(
    monkeypatch, tasks_captured, django_capture_on_commit_callbacks
):
    channel_create()
    inserted: list[int] = []

    def fail_after_the_inserts(**kwargs):
        inserted.append(Message.objects.count())  # inside the delivery's transaction
        raise OperationalError("server closed the connection unexpectedly")

    # The heartbeat is the delivery's last write: failing there proves the inserts are undone too.
    monkeypatch.setattr("apps.whatsapp.services.channel_webhook_seen", fail_after_the_inserts)

    with django_capture_on_commit_callbacks() as callbacks:
        response = post(text_delivery((SHOP, "wamid.ONE", "first"), (SHOP, "wamid.TWO", "second")))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert inserted == [2]
    assert not Message.objects.exists()
    assert callbacks == [] and tasks_captured.ids(*INBOUND) == []
    assert Channel.objects.get().last_webhook_at is None


def test_the_heartbeat_is_written_at_most_once_a_minute(monkeypatch):
    stale = timezone.now() - timedelta(minutes=2)
    channel = channel_create(last_webhook_at=stale)

    post(fixture("text.json"))
    channel.refresh_from_db()
    first = channel.last_webhook_at
    post(text_delivery((SHOP, "wamid.SECOND", "second")))
    channel.refresh_from_db()
    second = channel.last_webhook_at
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr("apps.whatsapp.services.timezone", types.SimpleNamespace(now=lambda: later))
    post(text_delivery((SHOP, "wamid.LATER", "later")))
    channel.refresh_from_db()

    assert first > stale
    assert second == first
    assert channel.last_webhook_at == later
    assert Message.objects.count() == 3


# --- who may write -------------------------------------------------------------------------------------


def test_a_delivery_without_a_signature_is_401_and_stores_nothing():
    channel_create()

    response = post(fixture("text.json"), secret=None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signature_missing"
    assert not Message.objects.exists()


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, "sha1=abcdef", "garbage"])
def test_a_delivery_with_a_wrong_signature_is_403_and_stores_nothing(signature, tasks_captured):
    channel = channel_create()

    response = Client().post(
        URL, data=fixture("text.json"), content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signature_invalid"
    assert not Message.objects.exists() and tasks_captured.ids(*INBOUND) == []
    channel.refresh_from_db()
    assert channel.last_webhook_at is None


def test_a_body_changed_after_signing_is_403():
    channel_create()
    body = fixture("text.json")

    response = Client().post(
        URL,
        data=body.replace(b"another color", b"a free sample"),
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, SHOP_SECRET),
    )

    assert response.status_code == 403
    assert not Message.objects.exists()


def test_one_apps_secret_cannot_write_into_another_apps_number(caplog):
    shop = channel_create()
    channel_create(RESTAURANT, RESTAURANT_SECRET)
    delivery = text_delivery((SHOP, "wamid.SHOP", "for the shop"), (RESTAURANT, "wamid.INJECTED", "injected"))

    with caplog.at_level(logging.WARNING):
        response = post(delivery, secret=SHOP_SECRET)

    assert response.status_code == 200
    assert list(Message.objects.values_list("channel_id", "wamid")) == [(shop.pk, "wamid.SHOP")]
    assert f"phone_number_id {RESTAURANT} skipped: signed with another app's secret" in caplog.text
    assert Channel.objects.get(phone_number_id=RESTAURANT).last_webhook_at is None


def test_a_channel_without_its_own_app_secret_takes_nothing_not_even_the_platform_secret(settings):
    settings.WHATSAPP_APP_SECRET = "global-app-secret-51d0"
    channel_create(app_secret="")

    response = post(fixture("text.json"), secret="global-app-secret-51d0")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signature_invalid"
    assert not Message.objects.exists()


def test_the_platform_secret_does_not_open_a_channel_that_has_its_own(settings):
    settings.WHATSAPP_APP_SECRET = "global-app-secret-51d0"
    channel = channel_create()

    response = post(fixture("text.json"), secret="global-app-secret-51d0")

    assert response.status_code == 403
    assert not Message.objects.exists()
    channel.refresh_from_db()
    assert channel.last_webhook_at is None


def test_the_bootstrap_channel_takes_deliveries_signed_with_the_platform_secret(settings):
    from apps.whatsapp.services import channel_bootstrap

    settings.WHATSAPP_APP_SECRET, settings.WHATSAPP_PHONE_NUMBER_ID = "global-app-secret-51d0", SHOP
    channel_bootstrap(workspace=WorkspaceFactory.create())

    response = post(fixture("text.json"), secret="global-app-secret-51d0")

    assert response.status_code == 200
    assert Message.objects.get().channel_id == Channel.objects.get(phone_number_id=SHOP).pk


def test_a_delivery_for_a_number_no_channel_has_is_acknowledged_with_the_platform_secret_only(settings):
    settings.WHATSAPP_APP_SECRET = "global-app-secret-51d0"

    platform = post(fixture("text.json"), secret="global-app-secret-51d0")
    stranger = post(fixture("text.json"), secret="someone-elses-secret")

    # 200, so that Meta stops re-delivering for a number that left the platform; nothing stored.
    assert (platform.status_code, stranger.status_code) == (200, 403)
    assert not Message.objects.exists()


def test_an_unknown_number_is_logged_without_secrets_and_skipped_while_the_rest_is_stored(caplog):
    shop = channel_create()
    delivery = text_delivery((SHOP, "wamid.SHOP", "hello"), ("999000111222333", "wamid.NOBODY", "lost"))

    with caplog.at_level(logging.DEBUG):
        response = post(delivery, secret=SHOP_SECRET)

    assert response.status_code == 200
    assert list(Message.objects.values_list("channel_id", "wamid")) == [(shop.pk, "wamid.SHOP")]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == (
        "webhook for unknown phone_number_id 999000111222333 skipped (1 messages, 0 statuses, 0 preferences)"
    )
    assert SHOP_SECRET not in caplog.text and "sha256=" not in caplog.text


def test_an_inactive_channel_is_treated_as_unknown():
    channel = channel_create(is_active=False)

    response = post(fixture("text.json"))

    assert response.status_code == 200
    assert not Message.objects.exists()
    channel.refresh_from_db()
    assert channel.last_webhook_at is None


def test_an_account_wide_change_signed_with_its_accounts_secret_is_acknowledged_and_ignored():
    channel_create(waba_id=SHOP_WABA)
    delivery = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": SHOP_WABA,
                "time": 1749416383,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "APPROVED",
                            "message_template_id": 594425479261596,
                            "reason": "NONE",
                        },
                    }
                ],
            }
        ],
    }

    assert post(delivery).status_code == 200
    assert post(delivery, secret="someone-else").status_code == 403
    assert not Message.objects.exists()


# --- what is refused before anything is read -----------------------------------------------------------


def test_a_body_over_one_mebibyte_is_413():
    channel_create()
    body = json.dumps({"object": "whatsapp_business_account", "entry": [], "pad": "x" * 1024 * 1024}).encode()

    response = post(body)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_body_longer_than_its_content_length_said_is_413(settings, rf: RequestFactory):
    settings.WHATSAPP_WEBHOOK_MAX_BYTES = 64
    request = rf.post(URL, data=b"{}", content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=00")
    request._stream = io.BytesIO(b"{" + b" " * 100 + b"}")  # as from a server that does not cap the stream

    response = whatsapp_webhook(request)

    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}',
        b'{"object": "whatsapp_business_account", "entry": {"changes": []}}',
    ],
)
def test_a_body_that_is_not_a_whatsapp_delivery_is_400(body):
    channel_create()

    response = post(body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


def test_other_methods_are_405():
    assert Client().put(URL, data=b"{}").status_code == 405


# --- verification handshake ----------------------------------------------------------------------------


def test_the_challenge_is_echoed_exactly_as_plain_text_for_a_channels_verify_token():
    channel_create(verify_token="s3cret-verify-token")
    challenge = "1158201444<script>&\"'ñ✓😀 %"

    response = Client().get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "s3cret-verify-token", "hub.challenge": challenge}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == challenge


def test_the_global_verify_token_is_accepted_too(settings):
    settings.WHATSAPP_VERIFY_TOKEN = "global-verify-token"

    response = Client().get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "global-verify-token", "hub.challenge": "42"}
    )

    assert (response.status_code, response.content) == (200, b"42")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "42"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "s3cret-verify-token", "hub.challenge": "42"},
        {"hub.verify_token": "s3cret-verify-token", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": "retired-token", "hub.challenge": "42"},
        {"hub.mode": "subscribe", "hub.verify_token": "s3cret-verify-tokeñ", "hub.challenge": "42"},
    ],
)
def test_a_wrong_token_or_mode_is_403_and_echoes_nothing(params, settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""
    channel_create(verify_token="s3cret-verify-token")
    channel_create(RESTAURANT, verify_token="retired-token", is_active=False)
    channel_create("100000000000001", verify_token="")

    response = Client().get(URL, params)

    assert response.status_code == 403
    assert b"42" not in response.content


def test_the_handshake_finds_the_channel_by_digest_without_decrypting_the_others(settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""
    for n in range(20):
        channel_create(f"1000000000000{n:02d}", verify_token=f"other-token-{n}")
    channel_create(verify_token="s3cret-verify-token")
    query = {"hub.mode": "subscribe", "hub.verify_token": "s3cret-verify-token", "hub.challenge": "42"}

    with patch("chatbot.crypto.decrypt", wraps=crypto.decrypt) as decrypt:
        response = Client().get(URL, query)

    assert (response.status_code, response.content) == (200, b"42")
    assert decrypt.call_count == 1  # the matching channel's token alone, compared in constant time


def test_a_changed_token_and_a_key_rotation_keep_the_digest_in_step(settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""
    channel = channel_create(verify_token="first-token")
    query = {"hub.mode": "subscribe", "hub.challenge": "42"}
    channel.verify_token = "second-token"
    channel.save(update_fields=["verify_token"])
    assert Client().get(URL, {**query, "hub.verify_token": "first-token"}).status_code == 403
    assert Client().get(URL, {**query, "hub.verify_token": "second-token"}).status_code == 200

    # A new key in front: rows hashed under the old one are found until rotate_keys re-saves them.
    old_key = settings.FERNET_KEYS[0]
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), old_key]
    assert Client().get(URL, {**query, "hub.verify_token": "second-token"}).status_code == 200
    call_command("rotate_keys", stdout=io.StringIO())
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]  # the old key retired
    assert Client().get(URL, {**query, "hub.verify_token": "second-token"}).status_code == 200


def test_the_verify_handshake_is_rate_limited_per_ip(settings):
    # Given a limit of 3 handshakes a minute and a channel's verify token
    settings.WHATSAPP_VERIFY_RATE = "3/60"
    channel_create(verify_token="s3cret-verify-token")
    # Fresh addresses: the limiter's Redis keys outlive a test run
    guesser, meta = (Client(REMOTE_ADDR=f"2001:db8::{secrets.token_hex(2)}:{n}") for n in (1, 2))
    guess = {"hub.mode": "subscribe", "hub.challenge": "42"}

    # When one address guesses three times, then presents the right token
    guesses = [guesser.get(URL, {**guess, "hub.verify_token": f"guess-{n}"}).status_code for n in range(3)]
    fourth = guesser.get(URL, {**guess, "hub.verify_token": "s3cret-verify-token"})

    # Then the fourth try is refused before the token is looked at, and echoes nothing
    assert guesses == [403, 403, 403]
    assert fourth.status_code == 429
    assert fourth.json() == {
        "error": {"code": "throttled", "message": "Too many verification attempts; try again later."}
    }
    assert 1 <= int(fourth["Retry-After"]) <= 60
    assert b"42" not in fourth.content
    # ... while another address is not held back by it
    assert meta.get(URL, {**guess, "hub.verify_token": "s3cret-verify-token"}).content == b"42"
