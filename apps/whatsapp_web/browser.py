"""The browser: one Playwright per worker-web process, one persistent Chromium context per WhatsApp Web
channel (its profile, i.e. the linked session, under WHATSAPP_WEB_PROFILE_DIR, mode 0700), every object
used on the thread that made it.

The page is WhatsApp Web (or its stand-in, by WHATSAPP_WEB_URL). Into it go the wa-js bundle, checked by
its SHA-256, and our adapter (bridge/adapter.js), which reports states and messages through a binding
and runs commands (send with typing, seen). Nothing here reads the page's DOM.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.whatsapp.models import Channel
from apps.whatsapp_web import commands
from apps.whatsapp_web.media import (
    KIND_FAMILIES,
    LinkFailed,
    MediaRefused,
    link_fetch,
    media_check,
    media_save,
    outbox_read,
    outbox_remove,
    size_label,
)
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.selectors import web_stored_wamids
from apps.whatsapp_web.services import (
    web_leases_hold,
    web_leases_release,
    web_messages_store,
    web_session_heartbeat,
    web_session_pairing_set,
    web_session_reconnected,
    web_session_state_set,
    web_session_stopped,
    web_statuses_store,
)
from apps.whatsapp_web.watchdog import Watchdog

logger = logging.getLogger(__name__)

ADAPTER = Path(__file__).with_name("bridge") / "adapter.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A page in the background must keep its timers: WhatsApp Web keeps its socket alive with them.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
]
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
HEARTBEAT_EVERY = 10.0  # seconds between two heartbeats written to the session row
PUMP_MS = 100  # how long each idle turn waits for the page's events
CHANNELS_EVERY = 2.0  # seconds between two reads of which channels should have a page
STATES = {state.value for state in WebSession.State}
SENT_KEPT = 1000  # the platform's ids of this many recent sends are kept to name their receipts
SEND_OPS = frozenset({"send", "send_file"})  # the commands that send a message, paced alike
CALL_GRACE = 10.0  # seconds a page call may overrun its own timeout before its browser is killed


class BridgeError(RuntimeError):
    """The bridge cannot be loaded (missing bundle, wrong hash)."""


def bridge_scripts() -> tuple[str, str]:
    """(wa-js bundle, adapter), the bundle checked against its pinned SHA-256."""
    bundle_path = Path(settings.WHATSAPP_WEB_BRIDGE_BUNDLE)
    try:
        bundle = bundle_path.read_bytes()
    except OSError as exc:
        raise BridgeError(f"the wa-js bundle {bundle_path} is missing (deploy/wa-js/fetch.sh)") from exc
    expected = settings.WHATSAPP_WEB_BRIDGE_SHA256 or _hash_file(bundle_path)
    actual = hashlib.sha256(bundle).hexdigest()
    if not expected or actual != expected.strip().lower():
        raise BridgeError(f"the wa-js bundle {bundle_path} does not match its pinned SHA-256")
    return bundle.decode("utf-8"), ADAPTER.read_text(encoding="utf-8")


def _hash_file(bundle: Path) -> str:
    pinned = bundle.with_name(bundle.name + ".sha256")
    return pinned.read_text().split()[0] if pinned.exists() else ""


def version_supported(version: str) -> bool:
    """Is this WhatsApp Web version one the bridge is pinned for (WHATSAPP_WEB_VERSIONS: prefixes;
    empty: any)?"""
    pinned = [prefix.strip() for prefix in settings.WHATSAPP_WEB_VERSIONS.split(",") if prefix.strip()]
    return not pinned or any(version.startswith(prefix) for prefix in pinned)


def profile_dir(channel_id: int) -> Path:
    """The channel's browser profile, readable by the service user only."""
    root = Path(settings.WHATSAPP_WEB_PROFILE_DIR)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    path = root / f"channel-{channel_id}"
    path.mkdir(exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def has_profile(channel_id: int) -> bool:
    """Does this machine's disk hold the channel's browser profile (a linked session, no QR to scan)?"""
    path = Path(settings.WHATSAPP_WEB_PROFILE_DIR) / f"channel-{channel_id}"
    try:
        return any(path.iterdir())
    except OSError:
        return False


def typing_ms(body: str) -> int:
    """How long to show "typing..." before a text: proportional to its length, +-20%, within bounds."""
    base = len(body) * settings.WHATSAPP_WEB_TYPING_MS_PER_CHAR * random.uniform(0.8, 1.2)  # noqa: S311
    return int(min(max(base, settings.WHATSAPP_WEB_TYPING_MIN_MS), settings.WHATSAPP_WEB_TYPING_MAX_MS))


@dataclass
class Session:
    channel: Channel
    context: Any = None
    page: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    lost: str = ""  # why the page is gone ("" while it lives)
    failures: int = 0  # restarts in a row without reaching `connected`
    restart_at: float = 0.0
    last_send_at: float = 0.0
    heartbeat_at: float = 0.0
    state: str = ""
    sent_uids: dict[str, str] = field(default_factory=dict)  # WhatsApp id -> our message uid
    catch_up: bool = False  # connected since the last catch-up: fetch what arrived unwatched

    @property
    def open(self) -> bool:
        return self.page is not None and not self.lost


class Driver:
    """Keeps a page per active WhatsApp Web channel, feeds what it reports into the platform, and runs
    the commands the senders hand over. `step()` does one turn; `run(seconds)` turns until the time is up."""

    def __init__(self, *, headless: bool = True, owner: str = "") -> None:
        self.headless = headless
        # This driver's name on the channels' leases: the host (a pod's stable name), the process, and a
        # token (two drivers of one process, or a restarted process with the same pid, differ).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sessions: dict[int, Session] = {}
        self._playwright: Any = None
        self._scripts: tuple[str, str] | None = None
        self._wanted: dict[int, Channel] = {}
        self._channels_read_at = float("-inf")
        self.watchdog = Watchdog()

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> Driver:
        if self._playwright is None:
            from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only worker-web needs it

            self._playwright = sync_playwright().start()
        return self

    def stop(self, *, release: bool = True) -> None:
        """Close every page; with `release`, give the channels back so another process takes them
        without waiting for the leases to run out (a killed process cannot: its leases expire)."""
        for session in list(self.sessions.values()):
            self._close(session)
        self.sessions.clear()
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if release:
            web_leases_release(owner=self.owner)

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.step()

    def step(self) -> None:
        now = time.monotonic()
        if now >= self._channels_read_at + CHANNELS_EVERY:
            self._channels_read_at = now
            self._wanted = self._channels_held()
        wanted = self._wanted
        for channel_id in set(self.sessions) - set(wanted):
            session = self.sessions.pop(channel_id)
            self._close(session)
            web_session_stopped(channel=session.channel, owner=self.owner)
        for channel_id, channel in wanted.items():
            session = self.sessions.setdefault(channel_id, Session(channel=channel))
            session.channel = channel
            if not session.open and now >= session.restart_at:
                self._open(session)
        idle = True
        for session in self.sessions.values():
            if session.page is not None:
                self._pump(session)
            if session.open:
                idle = not self._serve(session) and idle
        if idle:
            self._wait(PUMP_MS)

    def _channels_held(self) -> dict[int, Channel]:
        """The channels this driver holds the lease of (renewed, or newly taken): the only ones it opens.
        A channel whose lease another process took is dropped, and its page closed, by step()."""
        held = web_leases_hold(owner=self.owner, has_profile=has_profile)
        return {channel.pk: channel for channel in held}

    # --- a channel's page ---------------------------------------------------------------------------
    def _open(self, session: Session) -> None:
        channel = session.channel
        self._close(session)
        session.lost = ""
        self.start()  # Playwright starts with the first page: no browser while there is no number
        try:
            if self._scripts is None:
                self._scripts = bridge_scripts()
        except BridgeError as exc:
            logger.error("WhatsApp Web channel %s not started: %s", channel.pk, exc)
            web_session_state_set(channel=channel, state=WebSession.State.STOPPED, detail=str(exc))
            session.lost, session.restart_at = str(exc), time.monotonic() + settings.WHATSAPP_WEB_BACKOFF_MAX
            return
        if session.failures:
            web_session_reconnected(channel=channel)
        web_session_state_set(channel=channel, state=WebSession.State.STARTING)
        try:
            context = self._playwright.chromium.launch_persistent_context(
                str(profile_dir(channel.pk)),
                executable_path=settings.WHATSAPP_WEB_CHROMIUM,
                headless=self.headless,
                args=CHROMIUM_ARGS,
                user_agent=USER_AGENT,
                viewport={"width": 1280, "height": 800},
            )
            session.context = context
            context.expose_binding("__chatbotEmit", lambda source, event: session.events.append(event))
            page = context.pages[0] if context.pages else context.new_page()
            session.page = page
            page.on("crash", lambda _page: self._lose(session, "the page crashed"))
            page.on("close", lambda _page: self._lose(session, "the page closed"))
            context.on("close", lambda _context: self._lose(session, "the browser closed"))
            page.goto(settings.WHATSAPP_WEB_URL, wait_until="domcontentloaded", timeout=60_000)
            self._inject(session)
        except Exception as exc:  # noqa: BLE001 - any failure to start is retried with backoff
            logger.warning("WhatsApp Web channel %s failed to start: %s", channel.pk, exc)
            self._lose(session, f"start failed: {exc}")

    def _inject(self, session: Session) -> None:
        if self._scripts is None:
            self._scripts = bridge_scripts()
        bundle, adapter = self._scripts
        with self._guard(session, settings.WHATSAPP_WEB_STALE_SECONDS, "bridge injection"):
            session.page.add_script_tag(content=bundle)
            session.page.add_script_tag(content=adapter)

    def _lose(self, session: Session, why: str) -> None:
        if session.lost:
            return
        session.lost = why
        session.failures += 1
        backoff = min(
            settings.WHATSAPP_WEB_BACKOFF_FIRST * 2 ** (session.failures - 1),
            settings.WHATSAPP_WEB_BACKOFF_MAX,
        )
        session.restart_at = time.monotonic() + backoff * random.uniform(0.8, 1.2)  # noqa: S311
        logger.warning(
            "WhatsApp Web channel %s lost (%s); restart in %.0f s", session.channel.pk, why, backoff
        )

    def _close(self, session: Session) -> None:
        context, session.context, session.page = session.context, None, None
        if context is not None:
            # Our own close fires the page's close events: they must not count as a lost session.
            session.lost = session.lost or "closed by worker-web"
            try:
                with self._guard(session, 0, "close"):  # a hung renderer can hold a close forever
                    context.close()
            except Exception:  # noqa: BLE001 - closing what has crashed already
                logger.debug("closing a lost context", exc_info=True)

    def _wait(self, ms: int) -> None:
        """Let Playwright deliver the pages' events for `ms` (it dispatches them only while it waits)."""
        session = next((s for s in self.sessions.values() if s.open), None)
        if session is None:
            time.sleep(ms / 1000)
            return
        try:
            with self._guard(session, ms / 1000, "wait"):
                session.page.wait_for_timeout(ms)
        except Exception:  # noqa: BLE001 - the page went away; its session notices at its next turn
            time.sleep(ms / 1000)

    def _guard(self, session: Session, seconds: float, what: str) -> Any:
        """A deadline for a call into the session's page (watchdog.py): past it, its browser is killed."""
        return self.watchdog.deadline(
            profile_dir(session.channel.pk), seconds + CALL_GRACE, f"channel {session.channel.pk}'s {what}"
        )

    # --- what the page reports --------------------------------------------------------------------------
    def _pump(self, session: Session) -> None:
        try:
            if session.lost:
                raise RuntimeError(session.lost)
            # A heartbeat with a deadline: a page whose main thread hangs never answers, and is restarted.
            with self._guard(session, settings.WHATSAPP_WEB_STALE_SECONDS, "heartbeat"):
                snapshot = session.page.wait_for_function(
                    "() => window.__chatbotBridge ? window.__chatbotBridge.snapshot() : {gone: true}",
                    timeout=settings.WHATSAPP_WEB_STALE_SECONDS * 1000,
                ).json_value()
            if snapshot.get("gone"):  # the page was reloaded: the bridge is gone with it
                logger.info(
                    "WhatsApp Web channel %s: page reloaded, bridge injected again", session.channel.pk
                )
                session.state = WebSession.State.STARTING
                web_session_state_set(
                    channel=session.channel, state=WebSession.State.STARTING, detail="reloaded"
                )
                self._inject(session)
        except Exception as exc:  # noqa: BLE001 - a dead page is restarted with backoff
            self._lose(session, f"the page stopped answering: {exc}"[:200])
        events, session.events = session.events, []
        messages = [
            e["message"] for e in events if e.get("kind") == "message" and isinstance(e.get("message"), dict)
        ]
        for event in events:
            if event.get("kind") == "state" and event.get("state") in STATES:
                self._state(session, event)
        # The catch-up first: a message that arrived live just after the connect is newer than the
        # unread ones (and among them: stored once, in order, by the catch-up).
        if session.catch_up and session.state == WebSession.State.CONNECTED and not session.lost:
            session.catch_up = False
            self._catch_up(session)
        if messages:
            self._media(session, messages)
            web_messages_store(channel=session.channel, events=messages)
        if acks := [e for e in events if e.get("kind") == "ack"]:
            web_statuses_store(channel=session.channel, events=acks, uids=session.sent_uids)
        if session.lost:
            self._state(session, {"state": WebSession.State.DISCONNECTED, "detail": session.lost})
            self._close(session)
            return
        now = time.monotonic()
        if now - session.heartbeat_at >= HEARTBEAT_EVERY:
            session.heartbeat_at = now
            web_session_heartbeat(channel=session.channel)

    def _catch_up(self, session: Session) -> None:
        """Store the unread messages that arrived while no worker-web watched (bounded by
        WHATSAPP_WEB_CATCH_UP_CHATS x WHATSAPP_WEB_CATCH_UP_MESSAGES), oldest first, once each."""
        try:
            with self._guard(session, 2 * settings.WHATSAPP_WEB_STALE_SECONDS, "catch-up"):
                answer = session.page.evaluate(
                    "([op, args]) => window.__chatbotBridge.run(op, args)",
                    [
                        "catch_up",
                        {
                            "max_chats": settings.WHATSAPP_WEB_CATCH_UP_CHATS,
                            "max_messages": settings.WHATSAPP_WEB_CATCH_UP_MESSAGES,
                        },
                    ],
                )
        except Exception as exc:  # noqa: BLE001 - the page died; the next connect catches up again
            logger.warning("WhatsApp Web channel %s: catch-up failed: %s", session.channel.pk, exc)
            return
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else answer
            logger.warning("WhatsApp Web channel %s: catch-up failed: %s", session.channel.pk, error)
            return
        messages = [m for m in answer.get("messages") or [] if isinstance(m, dict)]
        if messages:
            self._media(session, messages)
        created = web_messages_store(channel=session.channel, events=messages) if messages else []
        logger.info(
            "WhatsApp Web channel %s caught up: %d unread message(s) in %s chat(s), %d new",
            session.channel.pk,
            len(messages),
            answer.get("chats"),
            len(created),
        )

    def _media(self, session: Session, messages: list[dict[str, Any]]) -> None:
        """Download the file of each new media message through the bridge before the message is stored:
        it is stored with its file, or marked unavailable with the reason (the message is never lost)."""
        wanted = [m for m in messages if str(m.get("type") or "") in KIND_FAMILIES and m.get("id")]
        if not wanted:
            return
        stored = web_stored_wamids(channel=session.channel, wamids=[str(m["id"]) for m in wanted])
        for event in wanted:
            if str(event["id"]) not in stored:
                event.update(self._media_one(session, event))

    def _media_one(self, session: Session, event: dict[str, Any]) -> dict[str, Any]:
        kind, wamid = str(event["type"]), str(event["id"])
        cap = settings.WHATSAPP_WEB_MEDIA_MAX_BYTES
        try:
            if int(event.get("size") or 0) > cap:  # WhatsApp's word: not even downloaded
                raise MediaRefused(f"larger than {size_label(cap)}")
            if session.lost:
                raise MediaRefused(f"the browser was lost: {session.lost}")
            try:
                with self._guard(session, settings.WHATSAPP_WEB_MEDIA_TIMEOUT, "media download"):
                    answer = session.page.evaluate(
                        "([op, args]) => window.__chatbotBridge.run(op, args)",
                        [
                            "media",
                            {
                                "id": wamid,
                                "max_bytes": cap,
                                "timeout_ms": int(settings.WHATSAPP_WEB_MEDIA_TIMEOUT * 1000),
                            },
                        ],
                    )
            except Exception as exc:  # noqa: BLE001 - the page died under the download
                self._lose(session, "the browser failed during a media download")
                raise MediaRefused(f"the browser failed: {exc}"[:200]) from exc
            if not isinstance(answer, dict) or not answer.get("ok"):
                error = answer.get("error") if isinstance(answer, dict) else ""
                raise MediaRefused(f"WhatsApp Web did not hand it over: {error or 'no answer'}"[:200])
            try:
                content = base64.b64decode(str(answer.get("data") or ""), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MediaRefused("the bridge answered something that is not a file") from exc
            mime_type = str(answer.get("mimetype") or event.get("mimetype") or "")
            media_check(kind=kind, mime_type=mime_type, size=len(content))
            try:
                digest = media_save(
                    channel_id=session.channel.pk,
                    wamid=wamid,
                    content=content,
                    mime_type=mime_type,
                    filename=str(event.get("filename") or ""),
                )
            except OSError as exc:  # a full or unwritable disk: the message itself is still stored
                raise MediaRefused(f"could not be kept: {exc}"[:200]) from exc
        except MediaRefused as exc:
            logger.warning("WhatsApp Web media of %s unavailable: %s", wamid, exc)
            return {"mediaError": str(exc)}
        return {"media": {"sha256": digest, "size": len(content), "mimetype": mime_type}}

    def _state(self, session: Session, event: dict[str, Any]) -> None:
        state = str(event["state"])
        version = str(event.get("version") or "")
        if state == WebSession.State.CONNECTED and not version_supported(version):
            # WhatsApp Web changed under the pinned bridge: sending could misbehave, so nothing is sent
            # until an operator pins the new version (or updates the bridge).
            event = {
                **event,
                "state": WebSession.State.OUTDATED,
                "detail": f"untested WhatsApp Web {version}",
            }
            state = WebSession.State.OUTDATED
        if state == WebSession.State.CONNECTED and session.state != state:
            session.catch_up = True
        session.state = state
        if state == WebSession.State.CONNECTED:
            session.failures = 0
        web_session_state_set(
            channel=session.channel,
            state=state,
            detail=str(event.get("detail") or ""),
            qr=str(event.get("qr") or ""),
            whatsapp_version=str(event.get("version") or ""),
        )

    # --- what the senders ask -----------------------------------------------------------------------------
    def _serve(self, session: Session) -> bool:
        """Run the channel's waiting commands; True when there was one."""
        command = commands.command_take(channel_id=session.channel.pk)
        if command is None:
            return False
        args = dict(command.args)
        if command.op in SEND_OPS and session.state != WebSession.State.CONNECTED:
            commands.command_reply(command=command, answer={"ok": False, "error": f"session {session.state}"})
            return True
        if command.op == "send_file":
            prepared = self._file_prepare(session, args)
            if "error" in prepared:  # nothing went out: the sender learns why
                commands.command_reply(command=command, answer={"ok": False, **prepared})
                return True
            args = prepared
        if command.op in SEND_OPS:
            gap = settings.WHATSAPP_WEB_MIN_GAP * (1 + random.random())  # noqa: S311
            wait = session.last_send_at + gap - time.monotonic()
            if wait > 0:
                self._wait(int(wait * 1000))
            args["typing_ms"] = typing_ms(str(args.get("body") or args.get("caption") or ""))
        # The bridge gives up on a command that hangs (a send then counts as perhaps sent).
        args["timeout_ms"] = int(settings.WHATSAPP_WEB_STALE_SECONDS * 1000) + args.get("typing_ms", 0)
        if command.op == "send_file":  # WhatsApp Web encrypts and uploads the file before it sends
            args["timeout_ms"] += int(settings.WHATSAPP_WEB_MEDIA_TIMEOUT * 1000)
        try:
            with self._guard(session, args["timeout_ms"] / 1000, command.op):
                answer = session.page.evaluate(
                    "([op, args]) => window.__chatbotBridge.run(op, args)", [command.op, args]
                )
        except Exception as exc:  # noqa: BLE001 - the browser died under the command
            # It may have left before the crash: the sender must not send it again.
            answer = {
                "ok": False,
                "error": f"the browser failed: {exc}",
                "sent_maybe": command.op in SEND_OPS,
            }
            self._lose(session, f"the browser failed during {command.op}")
        if command.op in SEND_OPS:
            session.last_send_at = time.monotonic()
            if isinstance(answer, dict) and answer.get("ok") and command.args.get("media_id"):
                # Sent: the upload is not needed again (kept when the outcome is unknown, for staff).
                outbox_remove(channel_id=session.channel.pk, media_id=str(command.args["media_id"]))
            if isinstance(answer, dict) and answer.get("ok") and args.get("uid"):
                session.sent_uids[str(answer.get("id"))] = str(args["uid"])
                while len(session.sent_uids) > SENT_KEPT:
                    session.sent_uids.pop(next(iter(session.sent_uids)))
        if command.op == "pair":  # nobody waits for it: the code goes to the dashboard
            ok = isinstance(answer, dict) and answer.get("ok")
            web_session_pairing_set(
                channel=session.channel,
                code=str(answer.get("code") or "") if ok else "",
                error="" if ok else str(answer.get("error") if isinstance(answer, dict) else answer),
            )
        commands.command_reply(command=command, answer=answer if isinstance(answer, dict) else {"ok": False})
        return True

    def _file_prepare(self, session: Session, args: dict[str, Any]) -> dict[str, Any]:
        """The file of a send_file command as a data URL for the page, or {"error", "permanent"} when it
        cannot be sent: read from the upload folder or fetched from its link, never past
        WHATSAPP_WEB_SEND_MAX_BYTES, and of a type that fits its kind."""
        kind, cap = str(args.get("kind") or ""), settings.WHATSAPP_WEB_SEND_MAX_BYTES
        try:
            if args.get("media_id"):
                file = outbox_read(
                    channel_id=session.channel.pk, media_id=str(args["media_id"]), max_bytes=cap
                )
            else:
                file = link_fetch(
                    link=str(args.get("link") or ""),
                    max_bytes=cap,
                    timeout=settings.WHATSAPP_WEB_MEDIA_TIMEOUT,
                )
            base = file.mime_type.split(";")[0].strip().lower()
            families = KIND_FAMILIES.get(kind) if kind in ("image", "video", "audio", "document") else None
            if families is None or not base or not base.startswith(families):
                raise MediaRefused(f"a {kind} message with a file of type {base or 'unknown'}")
        except MediaRefused as exc:
            return {"error": f"the file cannot be sent: {exc}", "permanent": True, "refused": True}
        except LinkFailed as exc:
            return {"error": str(exc)}
        data = base64.b64encode(file.content).decode("ascii")
        prepared = {key: value for key, value in args.items() if key not in ("media_id", "link")}
        prepared.update(data_url=f"data:{base};base64,{data}", mimetype=base, size=len(file.content))
        if kind == "document":
            prepared["filename"] = str(args.get("filename") or file.filename or "document")
        return prepared


_driver: Driver | None = None


def driver() -> Driver:
    """This process's driver (worker-web runs one, on its only thread: Celery's solo pool)."""
    global _driver
    if _driver is None:
        _driver = Driver()
    return _driver
