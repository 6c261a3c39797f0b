"""The `web` transport against a stand-in browser: a thread that takes commands as worker-web does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from apps.conversations.tests.factories import MessageFactory
from apps.conversations.transport import OutboundRequest, SendError, transport_for
from apps.whatsapp.models import Channel
from apps.whatsapp_web import commands
from apps.whatsapp_web.transport import REASON_NO_CONVERSATION, REASON_NOT_CONNECTED, WebTransport

pytestmark = pytest.mark.django_db
CUSTOMER = "5215512345678"


def text(body: str = "hola", to: str = CUSTOMER) -> OutboundRequest:
    return OutboundRequest(message_uid="uid-1", to=to, type="text", content={"body": body})


def browser(channel: Channel, answer: Callable[[commands.Command], dict[str, Any]]) -> threading.Thread:
    """Takes one command for the channel and answers it."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if command := commands.command_take(channel_id=channel.pk):
                commands.command_reply(command=command, answer=answer(command))
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def wrote(web_channel: Channel) -> None:
    MessageFactory.create(
        conversation__channel=web_channel, conversation__workspace=web_channel.workspace, from_wa_id=CUSTOMER
    )


def test_the_setting_routes_web_channels_to_this_transport(web_channel: Channel) -> None:
    assert isinstance(transport_for(web_channel), WebTransport)


def test_a_text_goes_to_the_browser_and_returns_its_message_id(
    web_channel: Channel, wrote: None, command_redis: Any
) -> None:
    seen: list[commands.Command] = []

    def answer(command: commands.Command) -> dict[str, Any]:
        seen.append(command)
        return {"ok": True, "id": "true_5215512345678@c.us_3EB0AA"}

    thread = browser(web_channel, answer)
    result = WebTransport().send(web_channel, text("¿En qué te ayudo?"))
    thread.join()

    assert result.wamids == ["true_5215512345678@c.us_3EB0AA"]
    assert [(c.op, c.args) for c in seen] == [
        ("send", {"chat": f"{CUSTOMER}@c.us", "body": "¿En qué te ayudo?", "uid": "uid-1"})
    ]


def test_a_send_that_types_for_longer_than_the_redis_socket_timeout_still_gets_its_answer(
    web_channel: Channel, wrote: None, command_redis: Any, settings: Any
) -> None:
    """The browser types for seconds before it sends (up to WHATSAPP_WEB_TYPING_MAX_MS): the sender's
    wait outlasts the Redis connection's 2 s read timeout, which once failed every such send although
    the message had left."""
    assert settings.CACHES["default"]["OPTIONS"]["SOCKET_TIMEOUT"] < 4

    def typing(command: commands.Command) -> dict[str, Any]:
        time.sleep(4)
        return {"ok": True, "id": "true_5215512345678@c.us_3EB0BB"}

    thread = browser(web_channel, typing)
    result = WebTransport().send(web_channel, text("Una respuesta larga"))
    thread.join()

    assert result.wamids == ["true_5215512345678@c.us_3EB0BB"]


def test_no_cold_messages_someone_who_never_wrote_is_refused_for_good(
    web_channel: Channel, command_redis: Any
) -> None:
    with pytest.raises(SendError) as caught:
        WebTransport().send(web_channel, text())

    assert caught.value.reason == REASON_NO_CONVERSATION
    assert caught.value.permanent is True
    assert command_redis.llen(commands.queue_key(web_channel.pk)) == 0


def test_a_customer_of_another_channel_does_not_count(
    web_channel: Channel, command_redis: Any, workspace: Any
) -> None:
    MessageFactory.create(from_wa_id=CUSTOMER)  # wrote to another workspace's number

    with pytest.raises(SendError, match="never starts a chat"):
        WebTransport().send(web_channel, text())


@pytest.mark.parametrize(
    ("kind", "content", "why"),
    [
        ("template", {"name": "promo", "language": {"code": "es"}}, "Cloud API only"),
        ("interactive", {"type": "button", "body": {"text": "?"}}, "reply buttons or lists"),
        ("sticker", {"id": "web-upload:" + "a" * 32}, "stickers are not sent"),
        ("location", {"latitude": 1, "longitude": 2}, "locations are not sent"),
        ("reaction", {"message_id": "x", "emoji": "👍"}, "reactions are not sent"),
        ("order", {}, "send text, images, video, audio and documents"),
        ("image", {"link": "https://example.com/a.png", "id": "web-upload:" + "a" * 32}, "exactly one of"),
        ("image", {}, "exactly one of"),
        ("image", {"id": "1234567890"}, "Cloud API cannot be sent"),
        ("document", {"link": "http://example.com/a.pdf"}, "https:// link only"),
        ("audio", {"link": "https://example.com/a.ogg", "caption": "hi"}, "no caption on audio"),
    ],
)
def test_what_whatsapp_web_cannot_send_is_refused_for_good_saying_why(
    web_channel: Channel, wrote: None, command_redis: Any, kind: str, content: dict[str, Any], why: str
) -> None:
    request = OutboundRequest(message_uid="u", to=CUSTOMER, type=kind, content=content)

    with pytest.raises(SendError, match=why) as caught:
        WebTransport().send(web_channel, request)

    assert (caught.value.permanent, caught.value.reason) == (True, "invalid_request")
    assert caught.value.outcome_unknown is False
    # Nothing was handed to the browser.
    assert commands.command_take(channel_id=web_channel.pk) is None


def test_a_file_goes_to_the_browser_by_its_upload_id_with_caption_and_name(
    web_channel: Channel, wrote: None, command_redis: Any, settings: Any, tmp_path: Any
) -> None:
    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path
    media_id = WebTransport().upload_media(
        web_channel, content=b"%PDF-1.4 menu", mime_type="application/pdf", filename="menu.pdf"
    )
    seen: list[commands.Command] = []

    def answer(command: commands.Command) -> dict[str, Any]:
        seen.append(command)
        return {"ok": True, "id": "true_5215512345678@c.us_3EB0FF"}

    thread = browser(web_channel, answer)
    request = OutboundRequest(
        message_uid="uid-9",
        to=CUSTOMER,
        type="document",
        content={"id": media_id, "caption": "la carta", "filename": "menu.pdf"},
    )
    result = WebTransport().send(web_channel, request)
    thread.join()

    assert result.wamids == ["true_5215512345678@c.us_3EB0FF"]
    [command] = seen
    assert command.op == "send_file"
    assert command.args == {
        "kind": "document",
        "caption": "la carta",
        "media_id": media_id,
        "filename": "menu.pdf",
        "chat": "5215512345678@c.us",
        "uid": "uid-9",
    }


def test_an_upload_over_the_cap_is_refused_and_not_kept(
    web_channel: Channel, settings: Any, tmp_path: Any
) -> None:
    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path
    settings.WHATSAPP_WEB_SEND_MAX_BYTES = 10

    with pytest.raises(SendError, match="up to 0 KB") as caught:
        WebTransport().upload_media(web_channel, content=b"x" * 11, mime_type="image/png", filename="a.png")

    assert caught.value.permanent is True
    assert list(tmp_path.rglob("*")) == []


def test_the_browsers_refusal_of_a_file_is_permanent_and_names_the_request(
    web_channel: Channel, wrote: None, command_redis: Any
) -> None:
    answer = {"ok": False, "error": "the file cannot be sent: too big", "permanent": True, "refused": True}
    thread = browser(web_channel, lambda command: answer)
    request = OutboundRequest(
        message_uid="u", to=CUSTOMER, type="image", content={"link": "https://x.test/a.png"}
    )
    with pytest.raises(SendError, match="too big") as caught:
        WebTransport().send(web_channel, request)
    thread.join()

    assert (caught.value.permanent, caught.value.reason) == (True, "invalid_request")


def test_a_browser_that_never_takes_the_command_means_nothing_was_sent(
    web_channel: Channel, wrote: None, command_redis: Any, settings: Any
) -> None:
    settings.WHATSAPP_WEB_SEND_TIMEOUT = 1.0

    with pytest.raises(SendError) as caught:
        WebTransport().send(web_channel, text())

    assert caught.value.reason == REASON_NOT_CONNECTED
    assert caught.value.outcome_unknown is False
    assert caught.value.permanent is False
    # Withdrawn: a browser starting later does not send it after all.
    assert commands.command_take(channel_id=web_channel.pk) is None


def test_a_browser_that_took_the_command_and_went_silent_leaves_the_outcome_unknown(
    web_channel: Channel, wrote: None, command_redis: Any, settings: Any
) -> None:
    settings.WHATSAPP_WEB_SEND_TIMEOUT = 1.0

    def crash(command: commands.Command) -> dict[str, Any]:
        time.sleep(2.5)  # the browser dies mid-send: the answer comes after the sender gave up
        return {"ok": True, "id": "late"}

    thread = browser(web_channel, crash)
    with pytest.raises(SendError) as caught:
        WebTransport().send(web_channel, text())
    thread.join()

    assert caught.value.outcome_unknown is True


@pytest.mark.parametrize(
    ("answer", "unknown", "permanent"),
    [
        ({"ok": False, "error": "not connected"}, False, False),
        ({"ok": False, "error": "boom", "sent_maybe": True}, True, False),
        ({"ok": False, "error": "unknown op", "permanent": True}, False, True),
    ],
)
def test_the_browsers_refusals(
    web_channel: Channel,
    wrote: None,
    command_redis: Any,
    answer: dict[str, Any],
    unknown: bool,
    permanent: bool,
) -> None:
    thread = browser(web_channel, lambda command: answer)
    with pytest.raises(SendError) as caught:
        WebTransport().send(web_channel, text())
    thread.join()

    assert (caught.value.outcome_unknown, caught.value.permanent) == (unknown, permanent)


def test_a_read_receipt_is_handed_over_for_the_messages_chat(
    web_channel: Channel, command_redis: Any
) -> None:
    WebTransport().mark_read(web_channel, "false_5215512345678@c.us_3A01")
    WebTransport().mark_read(web_channel, "wamid.not-web")

    command = commands.command_take(channel_id=web_channel.pk)
    assert command is not None
    assert (command.op, command.args) == ("seen", {"chat": "5215512345678@c.us"})
    assert commands.command_take(channel_id=web_channel.pk) is None


def test_without_redis_a_send_fails_clearly(web_channel: Channel, wrote: None, settings: Any) -> None:
    settings.REDIS_URL = ""

    with pytest.raises(SendError, match="need REDIS_URL"):
        WebTransport().send(web_channel, text())
