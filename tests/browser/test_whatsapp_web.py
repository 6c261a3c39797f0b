"""WhatsApp Web in real Chromium: worker-web's driver opens the stand-in of web.whatsapp.com, injects the
bridge (the stand-in's wa-js surface, checked by hash, then our adapter) and feeds the platform."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from apps.alerts.models import Alert
from apps.conversations.models import Message
from apps.sandbox.demo import demo_seed
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web import browser as web_browser
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.watchdog import browser_pids
from standins.whatsapp_web import BUNDLE, WhatsAppWebStandIn, bundle_sha256
from tests.browser.conftest import CHROMIUM, _missing, screenshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CUSTOMER = "5215512345678"


@pytest.fixture
def web_standin(settings: Any, tmp_path: Path) -> Iterator[WhatsAppWebStandIn]:
    if not Path(CHROMIUM).exists():
        _missing("Debian's chromium")
    standin = WhatsAppWebStandIn().start()
    settings.WHATSAPP_WEB_URL = standin.url
    settings.WHATSAPP_WEB_BRIDGE_BUNDLE = str(BUNDLE)
    settings.WHATSAPP_WEB_BRIDGE_SHA256 = bundle_sha256()
    settings.WHATSAPP_WEB_CHROMIUM = CHROMIUM
    settings.WHATSAPP_WEB_PROFILE_DIR = tmp_path / "profiles"
    settings.WHATSAPP_WEB_TYPING_MIN_MS = 300
    settings.WHATSAPP_WEB_TYPING_MS_PER_CHAR = 5
    settings.WHATSAPP_WEB_MIN_GAP = 0.2
    settings.WHATSAPP_WEB_BACKOFF_FIRST = 0.5
    try:
        yield standin
    finally:
        standin.stop()


class DriverThread:
    """worker-web's driver on its own thread (Playwright's objects stay on it), as in the worker."""

    def __init__(self) -> None:
        self.driver = web_browser.Driver()
        self.release = True  # False: stopped as a killed process would be, its leases left to expire
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.driver.step()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.driver.stop(release=self.release)
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_driver(web_standin: WhatsAppWebStandIn, redis_url: str, settings: Any) -> Iterator[DriverThread]:
    settings.REDIS_URL = redis_url
    worker = DriverThread()
    worker.thread.start()
    yield worker
    worker.stop()


def web_channel(workspace: Workspace | None = None) -> Channel:
    workspace = workspace or Workspace.objects.create(slug="shop", name="Shop")
    return ChannelFactory.create(
        workspace=workspace, kind=Channel.Kind.WEB, phone_number_id="", name="Tienda"
    )


def state_of(channel: Channel) -> str:
    session = WebSession.objects.filter(channel=channel).first()
    return session.state if session else ""


def wait_state(channel: Channel, state: str, timeout: float = 60.0) -> WebSession:
    def reached() -> bool:
        """the session reaches the state"""
        return state_of(channel) == state

    wait_for(reached, timeout=timeout)
    return WebSession.objects.get(channel=channel)


def test_qr_then_linked_then_a_burst_of_three_is_stored_once_each(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, settings: Any
) -> None:
    channel = web_channel()

    session = wait_state(channel, "qr")
    assert session.qr == web_standin.qr_code
    profile = Path(settings.WHATSAPP_WEB_PROFILE_DIR) / f"channel-{channel.pk}"
    assert profile.is_dir()
    assert profile.stat().st_mode & 0o777 == 0o700

    web_standin.rotate_qr()
    wait_for(lambda: WebSession.objects.get(channel=channel).qr == web_standin.qr_code, timeout=30)

    web_standin.link()
    session = wait_state(channel, "connected")
    assert session.whatsapp_version == "2.3000.standin"
    channel.refresh_from_db()
    assert channel.health == Channel.Health.OK

    ids = [web_standin.incoming(CUSTOMER, f"mensaje {i}", name="Ana") for i in range(3)]
    wait_for(lambda: Message.objects.filter(channel=channel).count() == 3, timeout=30)
    rows = list(Message.objects.filter(channel=channel).order_by("sent_by_customer_at", "pk"))
    assert sorted(m.wamid for m in rows) == sorted(ids)
    assert {(m.from_wa_id, m.from_name, m.direction) for m in rows} == {(CUSTOMER, "Ana", "in")}
    assert sorted(m.body for m in rows) == ["mensaje 0", "mensaje 1", "mensaje 2"]

    # A reaction and a picture arrive through the same path.
    web_standin.react(CUSTOMER, ids[0], "👍")
    web_standin.incoming(CUSTOMER, type="image", caption="recibo", mimetype="image/jpeg")
    wait_for(lambda: Message.objects.filter(channel=channel).count() == 5, timeout=30)
    assert set(Message.objects.filter(channel=channel).values_list("type", flat=True)) == {
        "text",
        "reaction",
        "image",
    }


def test_media_is_downloaded_through_the_bridge_checked_and_kept_and_a_failure_keeps_the_message(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, settings: Any, tmp_path: Path
) -> None:
    from apps.whatsapp_web.transport import WebTransport

    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path / "media"
    settings.WHATSAPP_WEB_MEDIA_MAX_BYTES = 64 * 1024
    web_standin.link()
    channel = web_channel()
    wait_state(channel, "connected")
    files = {
        "image": (b"\xff\xd8\xff\xe0JFIF" + bytes(range(256)) * 4, "image/jpeg"),
        "ptt": (b"OggS\0\2" + b"\x01" * 300, "audio/ogg; codecs=opus"),
        "document": (b"%PDF-1.4\n" + b"x" * 500, "application/pdf"),
        "video": (b"\0\0\0\x18ftypmp42" + b"\0" * 400, "video/mp4"),
        "sticker": (b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 100, "image/webp"),
    }
    kept = {
        kind: web_standin.incoming(
            CUSTOMER, type=kind, mimetype=mime, media=content, caption="recibo", filename=f"{kind}.bin"
        )
        for kind, (content, mime) in files.items()
    }
    expired = web_standin.incoming(CUSTOMER, type="image", mimetype="image/jpeg")  # WhatsApp lost it
    too_big = web_standin.incoming(
        CUSTOMER, type="video", mimetype="video/mp4", media=b"\0" * (64 * 1024 + 1)
    )
    # Says it is a picture, is a page: it would run as ours in a staff member's browser.
    disguised = web_standin.incoming(
        CUSTOMER, type="image", mimetype="text/html", media=b"<script>x</script>"
    )

    wait_for(lambda: Message.objects.filter(channel=channel).count() == 8, timeout=60)
    rows = {m.wamid: m for m in Message.objects.filter(channel=channel)}
    for kind, wamid in kept.items():
        content, mime = files[kind]
        media = WebTransport().fetch_media(channel, wamid)
        assert (media.content, media.mime_type) == (content, mime), kind
        item = rows[wamid].payload[rows[wamid].type]
        assert item["file_size"] == len(content) and "unavailable" not in item
    assert rows[kept["ptt"]].type == "audio" and rows[kept["sticker"]].type == "sticker"
    assert rows[kept["document"]].payload["document"]["filename"] == "document.bin"
    assert rows[expired].payload["image"]["unavailable"].endswith("Media not found")
    assert rows[too_big].payload["video"]["unavailable"] == "larger than 64 KB"
    assert "type text/html" in rows[disguised].payload["image"]["unavailable"]
    for wamid in (expired, too_big, disguised):
        with pytest.raises(Exception, match="media unavailable"):
            WebTransport().fetch_media(channel, wamid)


def test_what_arrived_while_worker_web_was_down_is_caught_up_once_in_order_and_bounded(
    web_standin: WhatsAppWebStandIn, redis_url: str, settings: Any
) -> None:
    settings.REDIS_URL = redis_url
    settings.WHATSAPP_WEB_CATCH_UP_MESSAGES = 3
    other = "5491133334444"
    web_standin.link()
    channel = web_channel()
    start = int(time.time()) - 60
    # No worker-web runs: five messages wait unread on the phone (the first beyond the bound of 3).
    arrived = [
        (CUSTOMER, "uno"),
        (other, "hola"),
        (CUSTOMER, "dos"),
        (CUSTOMER, "tres"),
        (other, "¿hay alguien?"),
        (CUSTOMER, "cuatro"),
    ]
    ids = [web_standin.incoming(who, body, t=start + i) for i, (who, body) in enumerate(arrived)]

    first = DriverThread()
    first.thread.start()
    try:
        wait_for(lambda: Message.objects.filter(channel=channel).count() == 5, timeout=90)
    finally:
        first.stop()
    rows = list(Message.objects.filter(channel=channel).order_by("pk"))
    assert [m.body for m in rows] == ["hola", "dos", "tres", "¿hay alguien?", "cuatro"]
    assert [m.wamid for m in rows] == ids[1:]

    # worker-web starts again: the same unread messages are seen again and stored no second time.
    again = DriverThread()
    again.thread.start()
    try:
        wait_for(lambda: _live_states(channel).count("connected") == 2, timeout=90)
        live = web_standin.incoming(CUSTOMER, "cinco")
        wait_for(lambda: Message.objects.filter(channel=channel, wamid=live).exists(), timeout=30)
    finally:
        again.stop()
    assert Message.objects.filter(channel=channel).count() == 6


def _live_states(channel: Channel) -> list[str]:
    from apps.live.models import LiveEvent

    events = LiveEvent.objects.filter(kind="web_session", payload__channel_id=channel.pk).order_by("pk")
    return [event.payload["state"] for event in events]


def test_reload_logout_and_conflict_are_seen_and_the_session_comes_back(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread
) -> None:
    web_standin.link()
    channel = web_channel()
    wait_state(channel, "connected")
    first = web_standin.incoming(CUSTOMER, "antes")
    wait_for(lambda: Message.objects.filter(channel=channel).count() == 1, timeout=30)

    # WhatsApp Web reloads itself: the bridge is injected again and nothing is stored twice.
    web_standin.reload()
    connected_at = _live_states(channel).index("connected")
    wait_for(lambda: "starting" in _live_states(channel)[connected_at:], timeout=30)
    wait_state(channel, "connected")
    second = web_standin.incoming(CUSTOMER, "después")
    wait_for(lambda: Message.objects.filter(channel=channel).count() == 2, timeout=30)
    assert sorted(Message.objects.filter(channel=channel).values_list("wamid", flat=True)) == sorted(
        [first, second]
    )

    # Opened on another computer: conflict, then back when WhatsApp gives the session back.
    web_standin.set_mode("CONFLICT")
    wait_state(channel, "conflict")
    channel.refresh_from_db()
    assert channel.health == Channel.Health.UNHEALTHY
    web_standin.set_mode("MAIN")
    wait_state(channel, "connected")

    # The phone removes the linked device: logged out, then a new QR code to link again.
    web_standin.logout()
    session = wait_state(channel, "qr")
    assert session.qr == web_standin.qr_code
    states = _live_states(channel)
    assert states.index("logged_out") > states.index("conflict")
    channel.refresh_from_db()
    assert "logged_out" in channel.health_detail
    assert Alert.objects.filter(kind="whatsapp_web_lost", channel_id=channel.pk).count() == 1


def test_a_page_that_stops_answering_is_restarted(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, settings: Any
) -> None:
    settings.WHATSAPP_WEB_STALE_SECONDS = 3
    web_standin.link()
    channel = web_channel()
    wait_state(channel, "connected")

    web_standin.hang()

    # A page spinning at full CPU on a shared 2-core machine: give the heartbeat's timeout room.
    wait_for(lambda: "disconnected" in _live_states(channel), timeout=90)
    session = wait_state(channel, "connected")
    assert session.reconnects == 1
    web_standin.incoming(CUSTOMER, "¿siguen ahí?")
    wait_for(lambda: Message.objects.filter(channel=channel).count() == 1, timeout=30)


def test_a_burst_is_answered_once_by_the_bot_seen_then_typing_then_sent(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, worker: None
) -> None:
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    web_standin.link()
    channel = web_channel(workspace)
    wait_state(channel, "connected")

    web_standin.incoming(CUSTOMER, "Hola", name="Ana")
    web_standin.incoming(CUSTOMER, "una pregunta", name="Ana")
    web_standin.incoming(CUSTOMER, "¿A qué hora abrís?", name="Ana")

    wait_for(
        lambda: Message.objects.filter(channel=channel, direction="out", send_state="sent").exists(),
        timeout=90,
    )
    reply = Message.objects.get(channel=channel, direction="out")
    [sent] = web_standin.sent
    assert sent["chat"] == f"{CUSTOMER}@c.us"
    assert sent["body"] == reply.body
    assert "Abrimos de lunes a viernes" in sent["body"]
    assert reply.wamid == sent["id"]
    # Seen, then typing for a while, then the text.
    chat = f"{CUSTOMER}@c.us"
    assert chat in web_standin.seen
    composing = [p for p in web_standin.presence if p["state"] == "composing"]
    assert composing and composing[0]["chat"] == chat
    assert composing[0]["duration"] >= 300
    assert sent["at"] - composing[0]["at"] >= 0.25
    # Three messages in, one reply out: the burst was answered once.
    assert Message.objects.filter(channel=channel, direction="in").count() == 3
    assert Message.objects.filter(channel=channel, direction="out").count() == 1

    # Its receipts: sent (reported by the page right after the send), delivered, read; never back.
    wait_for(lambda: Message.objects.get(pk=reply.pk).status == "sent", timeout=30)
    web_standin.ack(sent["id"], 2)
    wait_for(lambda: Message.objects.get(pk=reply.pk).status == "delivered", timeout=30)
    web_standin.ack(sent["id"], 3)
    web_standin.ack(sent["id"], 2)
    wait_for(lambda: Message.objects.get(pk=reply.pk).status == "read", timeout=30)
    time.sleep(1)  # the late "delivered" has been read by the driver
    assert Message.objects.get(pk=reply.pk).status == "read"


def test_staff_send_a_picture_with_a_caption_and_a_pdf_to_a_customer_who_wrote(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, worker: None, settings: Any, tmp_path: Path
) -> None:
    import hashlib

    from apps.conversations.models import Conversation
    from apps.conversations.services.desk import conversation_file_send

    # The upload is kept where this process (the web) and the driver (worker-web) both read it.
    settings.WHATSAPP_WEB_MEDIA_DIR = tmp_path / "media"
    web_standin.link()
    channel = web_channel()
    agent = MembershipFactory.create(workspace=channel.workspace, role=Role.AGENT).user
    wait_state(channel, "connected")
    web_standin.incoming(CUSTOMER, "¿Me mandas la carta?", name="Ana")
    wait_for(lambda: Conversation.objects.filter(channel=channel).exists(), timeout=60)
    conversation = Conversation.objects.get(channel=channel)
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    pdf = b"%PDF-1.4\n" + b"carta " * 2000

    [image] = conversation_file_send(
        conversation=conversation,
        user=agent,
        content=picture,
        mime_type="image/png",
        filename="plato.png",
        caption="El plato del día",
    )
    [document] = conversation_file_send(
        conversation=conversation, user=agent, content=pdf, mime_type="application/pdf", filename="carta.pdf"
    )

    wait_for(
        lambda: (
            set(Message.objects.filter(pk__in=[image.pk, document.pk]).values_list("send_state", flat=True))
            == {"sent"}
        ),
        timeout=90,
    )
    chat = f"{CUSTOMER}@c.us"
    sent_image, sent_pdf = sorted(web_standin.sent_files, key=lambda f: f["at"])
    assert {k: sent_image[k] for k in ("chat", "type", "mimetype", "caption", "size", "sha256")} == {
        "chat": chat,
        "type": "image",
        "mimetype": "image/png",
        "caption": "El plato del día",
        "size": len(picture),
        "sha256": hashlib.sha256(picture).hexdigest(),
    }
    assert {k: sent_pdf[k] for k in ("type", "mimetype", "filename", "caption", "size", "sha256")} == {
        "type": "document",
        "mimetype": "application/pdf",
        "filename": "carta.pdf",
        "caption": "",
        "size": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
    }
    assert Message.objects.get(pk=image.pk).wamid == sent_image["id"]
    assert Message.objects.get(pk=document.pk).wamid == sent_pdf["id"]
    # Paced as a text: seen, then "typing", then the file, with the gap between the two sends.
    assert chat in web_standin.seen
    composing = [p for p in web_standin.presence if p["state"] == "composing"]
    assert len(composing) >= 2 and sent_image["at"] - composing[0]["at"] >= 0.25
    assert sent_pdf["at"] - sent_image["at"] >= settings.WHATSAPP_WEB_MIN_GAP
    # Sent: the uploads are not kept (each names one message).
    assert list((tmp_path / "media" / f"channel-{channel.pk}" / "outbox").iterdir()) == []


def test_a_channel_whose_worker_web_died_is_taken_over_once_its_lease_runs_out(
    web_standin: WhatsAppWebStandIn, redis_url: str, settings: Any
) -> None:
    settings.REDIS_URL = redis_url
    settings.WHATSAPP_WEB_LEASE_SECONDS = 4
    web_standin.link()
    channel = web_channel()
    first, second = DriverThread(), DriverThread()
    first.thread.start()
    try:
        wait_state(channel, "connected")
        assert WebSession.objects.get(channel=channel).owner == first.driver.owner
        second.thread.start()
        time.sleep(3)  # the second process reads the channels and renews nothing: it holds none
        assert list(second.driver.sessions) == []
        assert WebSession.objects.get(channel=channel).owner == first.driver.owner

        first.release = False
        first.stop()  # killed: its lease stays until it runs out
        stopped_at = time.monotonic()
        early = web_standin.incoming(CUSTOMER, "¿hay alguien?", name="Ana")  # while nobody drives

        wait_for(lambda: WebSession.objects.get(channel=channel).owner == second.driver.owner, timeout=30)
        assert time.monotonic() - stopped_at >= 2  # not before the lease ran out
        wait_for(
            lambda: (s := second.driver.sessions.get(channel.pk)) is not None and s.state == "connected",
            timeout=60,
        )
        late = web_standin.incoming(CUSTOMER, "hola otra vez", name="Ana")
        wait_for(lambda: Message.objects.filter(channel=channel).count() == 2, timeout=30)
        time.sleep(2)  # anything stored twice would show by now
        assert sorted(Message.objects.filter(channel=channel).values_list("wamid", flat=True)) == sorted(
            [early, late]
        )
        assert WebSession.objects.get(channel=channel).state == "connected"
    finally:
        if first.thread.is_alive():
            first.stop()
        if second.thread.is_alive():
            second.stop()
    # The second stopped cleanly: the channel is free for the next process at once.
    assert WebSession.objects.get(channel=channel).owner == ""


def _browser_pid(profile: Path) -> int:
    """The Chromium that the driver started on this profile (its main process)."""
    return next(iter(browser_pids(profile)), 0)


def test_a_browser_crash_mid_send_never_sends_the_message_twice(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, worker: None, settings: Any
) -> None:
    settings.WHATSAPP_WEB_TYPING_MIN_MS = 5000  # time to crash the browser while it types
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    web_standin.link()
    channel = web_channel(workspace)
    wait_state(channel, "connected")
    profile = Path(settings.WHATSAPP_WEB_PROFILE_DIR) / f"channel-{channel.pk}"
    pid = _browser_pid(profile)
    assert pid

    web_standin.incoming(CUSTOMER, "¿A qué hora abrís?")
    wait_for(lambda: any(p["state"] == "composing" for p in web_standin.presence), timeout=90)
    os.kill(pid, signal.SIGKILL)  # the browser this test's driver started

    # The session is lost, then restarted with backoff and linked again from its profile.
    wait_for(lambda: "disconnected" in _live_states(channel), timeout=30)
    wait_state(channel, "connected")
    assert _browser_pid(profile) not in (0, pid)
    reply = Message.objects.get(channel=channel, direction="out")
    wait_for(lambda: reply.send_attempts.filter(outcome="unknown").exists(), timeout=30)
    time.sleep(5)  # the senders have had every chance to send it again

    # It may have left before the crash, so it is not sent again (it waits for reconciliation).
    assert web_standin.sent == []
    reply.refresh_from_db()
    assert reply.send_state == "processing"
    assert Message.objects.filter(channel=channel, direction="out").count() == 1


def test_a_page_that_hangs_inside_a_send_is_killed_and_the_message_is_not_sent_twice(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, worker: None, settings: Any
) -> None:
    """The page's main thread stops while the send's `evaluate` waits for it (the message has left):
    Playwright would wait forever, with every channel of the process. The watchdog kills that
    channel's browser past the send's deadline; the send counts as perhaps sent (never repeated)
    and the channel comes back from its profile."""
    settings.WHATSAPP_WEB_STALE_SECONDS = 3
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    web_standin.link()
    channel = web_channel(workspace)
    wait_state(channel, "connected")
    profile = Path(settings.WHATSAPP_WEB_PROFILE_DIR) / f"channel-{channel.pk}"
    pid = _browser_pid(profile)
    web_standin.hang_after_sends = 1

    web_standin.incoming(CUSTOMER, "¿A qué hora abrís?")

    wait_for(lambda: "disconnected" in _live_states(channel), timeout=90)
    assert run_driver.driver.watchdog.kills >= 1
    wait_state(channel, "connected")
    assert _browser_pid(profile) not in (0, pid)
    reply = Message.objects.get(channel=channel, direction="out")
    wait_for(lambda: reply.send_attempts.filter(outcome="unknown").exists(), timeout=30)
    time.sleep(3)  # the senders have had every chance to send it again
    assert len(web_standin.sent) == 1
    assert Message.objects.filter(channel=channel, direction="out").count() == 1


def test_staff_add_a_number_see_its_qr_live_link_it_and_see_a_logout_live(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, ws_server: str, browser: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    base_url = ws_server.replace("ws://", "http://")
    workspace = Workspace.objects.create(slug="default", name="Default")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # daphne's settings
    user = UserFactory.create(is_staff=True)
    MembershipFactory.create(user=user, workspace=workspace, role=Role.OWNER)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.goto(f"{base_url}/login/?next=/whatsapp-web/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/whatsapp-web/")

    page.get_by_test_id("whatsapp-web-name").fill("Tienda <b>centro</b>")
    page.get_by_test_id("whatsapp-web-add").click()
    session = page.get_by_test_id("web-session")
    expect(session).to_contain_text("Tienda <b>centro</b>")
    qr = page.get_by_test_id("web-session-qr")
    expect(qr).to_be_visible(timeout=60_000)
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    screenshot(page, "whatsapp-web.png")

    web_standin.link()
    expect(session).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(page.get_by_test_id("web-session-qr")).to_have_count(0)
    channel = Channel.objects.get(workspace=workspace, kind=Channel.Kind.WEB)
    assert any('"web_session"' in frame for frame in frames), frames[:5]  # over the socket, not the poll

    web_standin.logout()
    expect(session).to_have_attribute("data-state", "qr", timeout=30_000)
    expect(page.get_by_test_id("web-session-qr")).to_be_visible()
    assert "logged_out" in _live_states(channel)
    context.close()


def test_an_admin_links_a_number_by_pairing_code_shown_live(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, ws_server: str, browser: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    base_url = ws_server.replace("ws://", "http://")
    workspace = Workspace.objects.create(slug="default", name="Default")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # daphne's settings
    user = UserFactory.create(is_staff=True)
    MembershipFactory.create(user=user, workspace=workspace, role=Role.ADMIN)
    channel = web_channel(workspace)
    wait_state(channel, "qr")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{base_url}/login/?next=/whatsapp-web/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/whatsapp-web/")
    expect(page.get_by_test_id("web-session-qr")).to_be_visible(timeout=30_000)

    page.get_by_test_id("web-session-pair-phone").fill("+52 1 55 1234 5678")
    page.get_by_test_id("web-session-pair").click()

    code = page.get_by_test_id("web-session-pairing-code")
    expect(code).to_be_visible(timeout=30_000)  # the stand-in has issued its code by then
    expect(code).to_have_text(
        f"{web_standin.pairing_code[:4]}-{web_standin.pairing_code[4:]}", timeout=30_000
    )
    assert web_standin.pairing_phone == "5215512345678"
    web_standin.rotate_qr()  # WhatsApp Web keeps rotating its QR code: the pairing code stays
    wait_for(lambda: WebSession.objects.get(channel=channel).qr == web_standin.qr_code, timeout=30)
    expect(code).to_be_visible()
    code.scroll_into_view_if_needed()
    screenshot(page, "whatsapp-web-pairing-code.png")

    assert web_standin.enter_code(code.inner_text())  # typed on the phone
    session = page.get_by_test_id("web-session")
    expect(session).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(page.get_by_test_id("web-session-pairing-code")).to_have_count(0)
    assert WebSession.objects.get(channel=channel).pairing_code == ""
    context.close()


def test_an_unpinned_whatsapp_web_version_is_outdated_and_sends_nothing(
    web_standin: WhatsAppWebStandIn, run_driver: DriverThread, settings: Any
) -> None:
    from apps.whatsapp_web import commands

    settings.WHATSAPP_WEB_VERSIONS = "2.2999.,2.3001."
    web_standin.link()
    channel = web_channel()

    session = wait_state(channel, "outdated")

    assert session.detail == "untested WhatsApp Web 2.3000.standin"
    assert Alert.objects.filter(kind="whatsapp_web_lost", channel_id=channel.pk).count() == 1
    web_standin.incoming(CUSTOMER, "hola")  # the chat exists: only the version stops the send
    answer = commands.command_call(
        channel_id=channel.pk,
        op="send",
        args={"chat": f"{CUSTOMER}@c.us", "body": "x", "uid": "u"},
        timeout=20,
    )
    assert answer == {"ok": False, "error": "session outdated"}
    assert web_standin.sent == []


def test_the_worker_web_process_drives_the_page(
    web_standin: WhatsAppWebStandIn, redis_url: str, sandbox_standin: Any, tmp_path: Path
) -> None:
    """The real worker-web: a Celery solo worker on the whatsapp_web queue, started as in the Procfile."""
    from apps.whatsapp_web.tasks import web_sessions_drive
    from tests.browser.conftest import ROOT, _process_env, _stop

    channel = web_channel()
    env = {
        **_process_env(redis_url, sandbox_standin.url, tmp_path),
        "WHATSAPP_WEB_URL": web_standin.url,
        "WHATSAPP_WEB_BRIDGE_BUNDLE": str(BUNDLE),
        "WHATSAPP_WEB_CHROMIUM": CHROMIUM,
        "WHATSAPP_WEB_PROFILE_DIR": str(tmp_path / "profiles"),
        "WHATSAPP_WEB_SLICE": "5",
    }
    log_path = tmp_path / "worker-web.log"
    proc = subprocess.Popen(  # noqa: S603
        [
            *(
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_app",
                "worker",
                "-Q",
                "whatsapp_web",
                "-P",
                "solo",
            ),
            *("--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: Playwright's driver and Chromium go with it
    )
    try:
        wait_for(lambda: "ready." in log_path.read_text(), timeout=120)
        web_sessions_drive.delay()

        session = wait_state(channel, "qr", timeout=90)
        assert session.qr == web_standin.qr_code
        web_standin.link()
        wait_state(channel, "connected")
        # Across slices (5 s each) the same browser keeps the page: messages keep flowing.
        time.sleep(6)
        web_standin.incoming(CUSTOMER, "hola")
        wait_for(lambda: Message.objects.filter(channel=channel).count() == 1, timeout=60)
        assert WebSession.objects.get(channel=channel).reconnects == 0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
        _stop(proc, log_path)
