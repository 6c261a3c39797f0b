"""Media received on WhatsApp Web: the checks before a file is kept, the store, the `web` transport
serving it back, and the marker a message gets when its file could not be kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apps.conversations.selectors import message_media
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.conversations.transport import SendError
from apps.whatsapp.models import Channel
from apps.whatsapp_web.inbound import inbound_messages
from apps.whatsapp_web.media import MediaRefused, media_check, media_read, media_save
from apps.whatsapp_web.transport import WebTransport

WAMID = "false_5215512345678@c.us_3A0000000000000009"
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 60


@pytest.fixture(autouse=True)
def media_dir(settings: Any, tmp_path: Path) -> Path:
    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path / "media"
    return tmp_path / "media"


@pytest.mark.parametrize(
    ("kind", "mime_type"),
    [
        ("image", "image/jpeg"),
        ("sticker", "image/webp"),
        ("ptt", "audio/ogg; codecs=opus"),
        ("audio", "audio/mpeg"),
        ("video", "video/mp4"),
        ("document", "application/pdf"),
    ],
)
def test_a_file_that_fits_its_kind_is_accepted(kind: str, mime_type: str) -> None:
    media_check(kind=kind, mime_type=mime_type, size=1000)


@pytest.mark.parametrize(
    ("kind", "mime_type", "why"),
    [
        ("image", "text/html", "type text/html"),
        ("image", "image/svg+xml", r"type image/svg\+xml"),
        ("document", "text/html", "type text/html"),
        ("audio", "video/mp4", "type video/mp4"),
        ("video", "", "type unknown"),
        ("chat", "text/plain", "carries no media"),
    ],
)
def test_a_file_that_is_not_what_its_message_says_is_refused(kind: str, mime_type: str, why: str) -> None:
    with pytest.raises(MediaRefused, match=why):
        media_check(kind=kind, mime_type=mime_type, size=10)


def test_a_file_above_the_cap_is_refused(settings: Any) -> None:
    settings.WHATSAPP_WEB_MEDIA_MAX_BYTES = 2 * 1024 * 1024

    media_check(kind="image", mime_type="image/png", size=2 * 1024 * 1024)
    with pytest.raises(MediaRefused, match="larger than 2 MB"):
        media_check(kind="image", mime_type="image/png", size=2 * 1024 * 1024 + 1)


def test_a_kept_file_is_read_back_with_its_type_and_only_the_service_user_reads_it(media_dir: Path) -> None:
    digest = media_save(channel_id=7, wamid=WAMID, content=JPEG, mime_type="image/jpeg", filename="a.jpg")

    kept = media_read(channel_id=7, wamid=WAMID)
    assert kept is not None
    assert (kept.content, kept.mime_type, kept.filename, kept.sha256) == (JPEG, "image/jpeg", "a.jpg", digest)
    assert media_read(channel_id=8, wamid=WAMID) is None  # another channel's store
    assert media_read(channel_id=7, wamid=WAMID + "X") is None
    assert (media_dir / "channel-7").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in (media_dir / "channel-7").iterdir()} == {0o600}
    assert not list((media_dir / "channel-7").glob("*.part"))


def event(**extra: object) -> dict[str, Any]:
    return {"id": WAMID, "from": "5215512345678@c.us", "type": "image", "t": 1764900000, **extra}


def test_a_downloaded_file_is_named_in_the_message_like_clouds_media() -> None:
    [message] = inbound_messages(
        [
            event(
                mimetype="image/jpeg",
                caption="recibo",
                media={"sha256": "ab", "size": 64, "mimetype": "image/png"},
            )
        ]
    )

    assert message.raw["image"] == {
        "id": WAMID,
        "mime_type": "image/png",
        "caption": "recibo",
        "sha256": "ab",
        "file_size": 64,
    }


def test_a_failed_download_keeps_the_message_with_the_reason() -> None:
    [message] = inbound_messages([event(type="document", filename="f.pdf", mediaError="Media not found")])

    assert message.type == "document"
    assert message.raw["document"]["unavailable"] == "Media not found"
    assert message.raw["document"]["filename"] == "f.pdf"


@pytest.mark.django_db
def test_the_api_serves_a_kept_file_and_says_when_there_is_none(web_channel: Channel) -> None:
    conversation = ConversationFactory.create(channel=web_channel, workspace=web_channel.workspace)
    kept = MessageFactory.create(
        conversation=conversation, wamid=WAMID, type="image", payload={"image": {"id": WAMID}}
    )
    lost = MessageFactory.create(
        conversation=conversation,
        wamid=WAMID + "2",
        type="image",
        payload={"image": {"id": WAMID + "2", "unavailable": "Media not found"}},
    )
    media_save(channel_id=web_channel.pk, wamid=WAMID, content=JPEG, mime_type="image/jpeg")

    assert message_media(message=kept).content == JPEG
    with pytest.raises(SendError, match="media unavailable") as caught:
        WebTransport().fetch_media(web_channel, lost.wamid)
    assert caught.value.permanent is True


class FakePage:
    """The page's side of a media download, as the bridge answers it."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[Any] = []

    def evaluate(self, script: str, arg: Any) -> dict[str, Any]:
        self.calls.append(arg)
        return self.answer


def _session(web_channel: Channel, answer: dict[str, Any]) -> Any:
    from apps.whatsapp_web.browser import Session

    return Session(channel=web_channel, page=FakePage(answer))


@pytest.mark.django_db
def test_the_driver_keeps_a_downloaded_file_and_names_it_in_the_event(web_channel: Channel) -> None:
    import base64

    from apps.whatsapp_web.browser import Driver

    session = _session(
        web_channel, {"ok": True, "mimetype": "image/jpeg", "data": base64.b64encode(JPEG).decode()}
    )
    events: list[dict[str, Any]] = [event(mimetype="image/jpeg"), {"id": "x", "type": "chat", "body": "hola"}]

    Driver()._media(session, events)

    assert events[0]["media"]["size"] == len(JPEG)
    assert "media" not in events[1]
    assert session.page.calls == [
        ["media", {"id": WAMID, "max_bytes": 100 * 1024 * 1024, "timeout_ms": 60000}]
    ]
    kept = media_read(channel_id=web_channel.pk, wamid=WAMID)
    assert kept is not None and kept.content == JPEG


@pytest.mark.django_db
def test_a_file_that_cannot_be_written_leaves_the_message_unavailable_not_lost(
    web_channel: Channel, media_dir: Path
) -> None:
    import base64

    from apps.whatsapp_web.browser import Driver

    media_dir.parent.mkdir(parents=True, exist_ok=True)
    media_dir.write_text("not a folder")  # the store cannot be written
    session = _session(
        web_channel, {"ok": True, "mimetype": "image/jpeg", "data": base64.b64encode(JPEG).decode()}
    )
    events = [event(mimetype="image/jpeg")]

    Driver()._media(session, events)

    assert events[0]["mediaError"].startswith("could not be kept")
    [message] = inbound_messages(events)
    assert message.raw["image"]["unavailable"].startswith("could not be kept")


@pytest.mark.django_db
def test_a_message_already_stored_is_not_downloaded_again(web_channel: Channel) -> None:
    from apps.whatsapp_web.browser import Driver

    conversation = ConversationFactory.create(channel=web_channel, workspace=web_channel.workspace)
    MessageFactory.create(conversation=conversation, wamid=WAMID, type="image")
    session = _session(web_channel, {"ok": False, "error": "should not be asked"})

    Driver()._media(session, [event(mimetype="image/jpeg")])

    assert session.page.calls == []
