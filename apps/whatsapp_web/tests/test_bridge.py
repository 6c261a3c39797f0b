"""The bridge: what our adapter calls of wa-js exists in the stand-in and (once fetched) in the pinned
real bundle, and a bundle that is not the pinned one is refused."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from apps.whatsapp_web.browser import ADAPTER, BridgeError, bridge_scripts
from standins.whatsapp_web import BUNDLE as STANDIN_BUNDLE

ROOT = Path(__file__).resolve().parents[3]
PINNED = ROOT / "deploy" / "wa-js" / "wppconnect-wa.js"
ADAPTER_JS = ADAPTER.read_text()
CALLS = sorted(set(re.findall(r"WPP\.(?:chat|conn)\.(\w+)", ADAPTER_JS)))
EVENTS = sorted(set(re.findall(r'WPP\.on\("([\w.]+)"', ADAPTER_JS)))


def test_the_adapter_uses_the_wa_js_surface_we_expect() -> None:
    assert CALLS == [
        "downloadMedia",
        "genLinkDeviceCodeForPhoneNumber",
        "getAuthCode",
        "getMessages",
        "isAuthenticated",
        "isMainReady",
        "list",
        "logout",
        "markIsComposing",
        "markIsPaused",
        "markIsRead",
        "markIsRecording",
        "sendFileMessage",
        "sendTextMessage",
    ]
    assert "chat.new_message" in EVENTS
    assert "conn.stream_mode_changed" in EVENTS


def test_the_stand_in_implements_every_function_the_adapter_calls() -> None:
    standin = STANDIN_BUNDLE.read_text()
    missing = [name for name in CALLS if not re.search(rf"\b{name}:", standin)]
    assert missing == []


@pytest.mark.skipif(not PINNED.exists(), reason="the pinned wa-js bundle is fetched by deploy/wa-js/fetch.sh")
def test_the_pinned_wa_js_bundle_matches_its_hash_and_has_every_name_the_adapter_uses() -> None:
    text = PINNED.read_text()
    pinned = (PINNED.parent / "wppconnect-wa.js.sha256").read_text().split()[0]
    assert hashlib.sha256(PINNED.read_bytes()).hexdigest() == pinned
    assert [name for name in [*CALLS, *EVENTS] if name not in text] == []


def test_a_bundle_with_another_hash_is_refused(settings: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "wa.js"
    bundle.write_text("window.WPP = {};")
    settings.WHATSAPP_WEB_BRIDGE_BUNDLE = str(bundle)
    settings.WHATSAPP_WEB_BRIDGE_SHA256 = "0" * 64

    with pytest.raises(BridgeError, match="does not match its pinned SHA-256"):
        bridge_scripts()


def test_the_hash_file_beside_the_bundle_pins_it(settings: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "wa.js"
    bundle.write_text("window.WPP = {};")
    settings.WHATSAPP_WEB_BRIDGE_BUNDLE = str(bundle)
    settings.WHATSAPP_WEB_BRIDGE_SHA256 = ""
    with pytest.raises(BridgeError):  # no pin at all: refused too
        bridge_scripts()

    (tmp_path / "wa.js.sha256").write_text(hashlib.sha256(bundle.read_bytes()).hexdigest() + "  wa.js\n")
    loaded, adapter = bridge_scripts()

    assert loaded == "window.WPP = {};"
    assert adapter == ADAPTER_JS


def test_a_missing_bundle_says_how_to_fetch_it(settings: Any, tmp_path: Path) -> None:
    settings.WHATSAPP_WEB_BRIDGE_BUNDLE = str(tmp_path / "absent.js")

    with pytest.raises(BridgeError, match="fetch.sh"):
        bridge_scripts()
