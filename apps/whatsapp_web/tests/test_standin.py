"""The WhatsApp Web stand-in's own contract: its hash file is current, and the phone page drives it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from standins.whatsapp_web import BUNDLE, WhatsAppWebStandIn, bundle_sha256


@pytest.fixture
def standin() -> Iterator[WhatsAppWebStandIn]:
    server = WhatsAppWebStandIn().start()
    yield server
    server.stop()


def test_the_stand_in_bundles_hash_file_is_current() -> None:
    pinned = BUNDLE.with_name(BUNDLE.name + ".sha256").read_text().split()[0]
    assert pinned == bundle_sha256() == hashlib.sha256(BUNDLE.read_bytes()).hexdigest(), (
        "run: cd standins && sha256sum whatsapp_web_wajs.js > whatsapp_web_wajs.js.sha256"
    )


def test_the_phone_page_links_and_writes_as_a_customer(standin: WhatsAppWebStandIn) -> None:
    with httpx.Client(base_url=standin.url, follow_redirects=True, timeout=5) as client:
        before = client.get("/standin/hello").json()
        assert (before["linked"], before["qr"]) == (False, standin.qr_code)

        page = client.post("/standin/phone/link")
        client.post(
            "/standin/phone/message", data={"wa_id": "34600123456", "name": "Lucía", "body": "<hola>"}
        )
        client.post("/standin/phone/message", data={"wa_id": "not-a-number", "body": "x"})  # ignored
        client.post("/standin/phone/conflict")
        events = client.get("/standin/poll", params={"since": before["seq"]}).json()["events"]
        sent = client.post("/standin/send", json={"chat": "34600123456@c.us", "body": "<b>hi</b>"}).json()
        shown = client.get("/standin/phone").text

    assert page.status_code == 200 and "linked" in page.text
    assert [e["type"] for e in events] == ["linked", "message", "mode"]
    assert events[1]["message"]["from"] == "34600123456@c.us"
    assert events[1]["message"]["notifyName"] == "Lucía"
    assert sent["id"].startswith("true_34600123456@c.us_")
    assert "&lt;b&gt;hi&lt;/b&gt;" in shown  # escaped
