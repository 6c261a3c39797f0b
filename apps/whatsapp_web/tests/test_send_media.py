"""worker-web's side of sending a file: the bytes come from the upload folder or a link, bounded, and
only a file whose type fits its kind goes to the page."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from apps.whatsapp.models import Channel
from apps.whatsapp_web.browser import Driver, Session
from apps.whatsapp_web.media import MediaRefused, outbox_read, outbox_save

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def media_dir(settings: Any, tmp_path: Path) -> Path:
    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path
    return tmp_path


class _Files(BaseHTTPRequestHandler):
    files: dict[str, tuple[int, str, bytes]] = {
        "/a.png": (200, "image/png", PNG),
        "/big.png": (200, "image/png", b"x" * 5000),
        "/page.png": (200, "text/html", b"<script>"),
        "/gone.png": (404, "text/plain", b"no"),
        "/busy.png": (503, "text/plain", b"later"),
    }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return

    def do_GET(self) -> None:
        status, kind, body = self.files.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        # No Content-Length for the big one: the cap must hold while streaming, not from the header.
        if self.path != "/big.png":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def files_server(settings: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def prepare(channel: Channel, args: dict[str, Any]) -> dict[str, Any]:
    return Driver()._file_prepare(Session(channel=channel), args)


def test_an_uploaded_file_becomes_a_data_url_with_its_type_and_name(
    web_channel: Channel, media_dir: Path
) -> None:
    media_id = outbox_save(
        channel_id=web_channel.pk, content=b"%PDF-1.4", mime_type="application/pdf", filename="m.pdf"
    )

    prepared = prepare(
        web_channel, {"kind": "document", "media_id": media_id, "caption": "", "filename": "m.pdf"}
    )

    assert prepared["data_url"] == "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()
    assert (prepared["mimetype"], prepared["size"], prepared["filename"]) == ("application/pdf", 8, "m.pdf")
    assert "media_id" not in prepared
    folder = media_dir / f"channel-{web_channel.pk}" / "outbox"
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o600}


def test_an_upload_of_another_channel_or_a_made_up_id_is_refused(
    web_channel: Channel, media_dir: Path
) -> None:
    media_id = outbox_save(
        channel_id=web_channel.pk + 1, content=PNG, mime_type="image/png", filename="a.png"
    )

    for bad in (media_id, "web-upload:../../etc/passwd", "web-upload:" + "0" * 32):
        prepared = prepare(web_channel, {"kind": "image", "media_id": bad})
        assert prepared == {
            "error": prepared["error"],
            "permanent": True,
            "refused": True,
        }
        assert "data_url" not in prepared


def test_an_upload_grown_past_the_cap_is_not_read(
    web_channel: Channel, media_dir: Path, settings: Any
) -> None:
    media_id = outbox_save(channel_id=web_channel.pk, content=PNG, mime_type="image/png", filename="a.png")
    settings.WHATSAPP_WEB_SEND_MAX_BYTES = 10

    with pytest.raises(MediaRefused, match="larger than"):
        outbox_read(channel_id=web_channel.pk, media_id=media_id, max_bytes=10)
    assert prepare(web_channel, {"kind": "image", "media_id": media_id})["permanent"] is True


def test_a_file_whose_type_does_not_fit_its_kind_is_refused(web_channel: Channel, media_dir: Path) -> None:
    media_id = outbox_save(channel_id=web_channel.pk, content=b"hi", mime_type="text/plain", filename="a.txt")

    prepared = prepare(web_channel, {"kind": "image", "media_id": media_id})

    assert prepared["error"] == "the file cannot be sent: a image message with a file of type text/plain"
    assert prepare(web_channel, {"kind": "document", "media_id": media_id})["mimetype"] == "text/plain"


def test_a_link_is_fetched_through_the_egress_guard_streamed_and_bounded(
    web_channel: Channel, media_dir: Path, files_server: str, settings: Any
) -> None:
    settings.WHATSAPP_WEB_SEND_MAX_BYTES = 1000

    prepared = prepare(web_channel, {"kind": "image", "link": f"{files_server}/a.png", "caption": "talla"})

    assert prepared["data_url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert (prepared["caption"], prepared["size"]) == ("talla", len(PNG))
    # Past the cap while streaming (no Content-Length given), a page for a picture, a 404: refused for good.
    for path, why in (
        ("/big.png", "larger than"),
        ("/page.png", "type text/html"),
        ("/gone.png", "HTTP 404"),
    ):
        refused = prepare(web_channel, {"kind": "image", "link": files_server + path})
        assert (refused["permanent"], why in refused["error"]) == (True, True), refused
    # A 503 may pass: the sender tries again later.
    busy = prepare(web_channel, {"kind": "image", "link": f"{files_server}/busy.png"})
    assert busy == {"error": "the link answered HTTP 503"}


def test_a_link_to_the_platforms_own_network_is_refused(
    web_channel: Channel, media_dir: Path, settings: Any
) -> None:
    settings.EGRESS_ALLOWED_NETWORKS = []

    prepared = prepare(web_channel, {"kind": "image", "link": "https://127.0.0.1:9/a.png"})

    assert prepared["permanent"] is True
    assert "not one the platform may fetch" in prepared["error"]
