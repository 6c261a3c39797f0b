"""A stand-in of WhatsApp Web for tests and development: a local HTTP server that the worker-web browser
opens in place of https://web.whatsapp.com/ (WHATSAPP_WEB_URL), with a Python control API playing the
phone (link, logout, another session taking over) and the customers (messages, reactions).

The page itself is a blank shell; the bridge surface (`WPP`) comes from `whatsapp_web_wajs.js`, which
worker-web injects as it would inject the real wa-js bundle (WHATSAPP_WEB_BRIDGE_BUNDLE). Run alone:
`python -m standins.whatsapp_web --port 8200`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

BUNDLE = Path(__file__).with_name("whatsapp_web_wajs.js")
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>WhatsApp</title></head>
<body><div id="app">WhatsApp Web (stand-in)</div></body></html>"""


def bundle_sha256() -> str:
    return hashlib.sha256(BUNDLE.read_bytes()).hexdigest()


class WhatsAppWebStandIn:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []  # what the page has to learn, numbered by position
        self._ids = itertools.count(1)
        self.linked = False
        self.mode = "MAIN"
        self.qr_ref = 1
        self.chats: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.sent_files: list[dict[str, Any]] = []  # files the page sent: type, mimetype, size, caption, ...
        self.seen: list[str] = []
        self.presence: list[dict[str, Any]] = []
        self.fail_sends = 0  # the next N sends answer an error
        self.hang_after_sends = 0  # the next N sends leave, then the page's main thread stops
        self.media: dict[str, tuple[bytes, str]] = {}  # a received message's file, by its id
        self.history: dict[str, list[dict[str, Any]]] = {}  # each chat's messages, oldest first
        self.pairing_phone = self.pairing_code = ""  # the last code the page asked for, and for whom
        self.unread: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None

    # --- the server ---------------------------------------------------------------------------
    def start(self) -> WhatsAppWebStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                return

            def do_GET(self) -> None:
                standin._get(self)

            def do_POST(self) -> None:
                standin._post(self)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _answer(
        self, handler: BaseHTTPRequestHandler, body: Any, content_type: str = "application/json"
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.write(data)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        with self._lock:
            if url.path == "/standin/hello":
                body: Any = {
                    "seq": len(self._events),
                    "linked": self.linked,
                    "mode": self.mode,
                    "qr": self.qr_code,
                    "ref": self.qr_ref,
                    "chats": sorted(self.chats),
                }
            elif url.path == "/standin/phone":
                body = self._phone_page()
            elif url.path == "/standin/media":
                kept = self.media.get(parse_qs(url.query).get("id", [""])[0])
                if kept is None:  # expired on WhatsApp's servers, or never there
                    handler.send_response(404)
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
                self._answer(handler, kept[0], kept[1])
                return
            elif url.path == "/standin/chats":  # most recent first, as WhatsApp Web lists them
                recent = sorted(self.history, key=lambda c: self.history[c][-1]["t"], reverse=True)
                body = [{"id": chat, "unreadCount": self.unread.get(chat, 0)} for chat in recent]
            elif url.path == "/standin/messages":
                query = parse_qs(url.query)
                chat = query.get("chat", [""])[0]
                count = int(query.get("count", ["20"])[0])
                if query.get("unread", ["0"])[0] == "1":
                    count = min(count, self.unread.get(chat, 0))
                body = self.history.get(chat, [])[-count:] if count > 0 else []
            elif url.path == "/standin/poll":
                since = int(parse_qs(url.query).get("since", ["0"])[0])
                body = {"seq": len(self._events), "events": self._events[since:]}
            else:
                body = PAGE
        self._answer(handler, body, "application/json" if not isinstance(body, bytes) else "text/html")

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        path = urlparse(handler.path).path
        if path.startswith("/standin/phone/"):
            self._phone_act(path.removeprefix("/standin/phone/"), parse_qs(raw.decode()))
            handler.send_response(303)
            handler.send_header("Location", "/standin/phone")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = json.loads(raw or b"{}")
        with self._lock:
            body: dict[str, Any] = {"ok": True}
            if path == "/standin/send":
                if self.fail_sends:
                    self.fail_sends -= 1
                    body = {"error": "stand-in refused the send"}
                else:
                    wamid = f"true_{data['chat']}_3EB0STANDIN{next(self._ids):06d}"
                    self.sent.append({**data, "id": wamid, "at": time.time()})
                    body = {"id": wamid}
                    if self.hang_after_sends:
                        self.hang_after_sends -= 1
                        body["hang"] = True
            elif path == "/standin/send_file":
                content = base64.b64decode(data["data"])
                options = data.get("options") or {}
                wamid = f"true_{data['chat']}_3EB0STANDIN{next(self._ids):06d}"
                self.sent_files.append(
                    {
                        "chat": data["chat"],
                        "id": wamid,
                        "type": options.get("type"),
                        "mimetype": options.get("mimetype"),
                        "caption": options.get("caption", ""),
                        "filename": options.get("filename", ""),
                        "size": len(content),
                        "sha256": hashlib.sha256(content).hexdigest(),
                        "at": time.time(),
                    }
                )
                body = {"id": wamid}
            elif path == "/standin/seen":
                self.seen.append(data["chat"])
                self.unread[data["chat"]] = 0
            elif path == "/standin/presence":
                self.presence.append({**data, "at": time.time()})
            elif path == "/standin/logout":
                self._logout()
            elif path == "/standin/pair":
                if self.linked:  # as wa-js: cannot_get_code_for_already_authenticated
                    body = {"error": "already authenticated"}
                else:
                    self.pairing_phone = str(data.get("phone") or "")
                    self.pairing_code = hashlib.sha256(self.pairing_phone.encode()).hexdigest()[:8].upper()
                    body = {"code": self.pairing_code}
        self._answer(handler, body)

    # --- a page to play the phone and the customers by hand (`make run`) -----------------------
    def _phone_page(self) -> bytes:
        sent = "".join(
            f"<li>{html.escape(m['chat'])}: {html.escape(m['body'])}</li>" for m in reversed(self.sent[-20:])
        )
        state = "linked" if self.linked else "not linked (the dashboard shows the QR code)"
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Phone (stand-in)</title></head>
<body><h1>WhatsApp Web stand-in: the phone</h1><p>Session: {state}; stream mode {self.mode}.</p>
<form method="post" action="/standin/phone/link"><button>Scan the QR code (link)</button></form>
<form method="post" action="/standin/phone/code"><input name="code" aria-label="pairing code" placeholder="ABCD-EFGH">
<button>Link with phone number (enter the pairing code)</button></form>
<form method="post" action="/standin/phone/logout"><button>Remove the linked device (log out)</button></form>
<form method="post" action="/standin/phone/conflict"><button>Open WhatsApp Web elsewhere</button></form>
<form method="post" action="/standin/phone/main"><button>Use it here again</button></form>
<form method="post" action="/standin/phone/reload"><button>Reload WhatsApp Web</button></form>
<h2>A customer writes</h2><form method="post" action="/standin/phone/message">
<input name="wa_id" value="34600123456" aria-label="number"> <input name="name" value="Lucia" aria-label="name">
<input name="body" value="Hola, que horario teneis?" aria-label="text" size="40"> <button>Send</button></form>
<h2>Sent by the platform</h2><ul>{sent}</ul></body></html>"""
        return page.encode()

    def _phone_act(self, action: str, form: dict[str, list[str]]) -> None:
        def field(name: str) -> str:
            return form.get(name, [""])[0].strip()

        if action == "link":
            self.link()
        elif action == "logout":
            self.logout()
        elif action == "conflict":
            self.set_mode("CONFLICT")
        elif action == "main":
            self.set_mode("MAIN")
        elif action == "reload":
            self.reload()
        elif action == "code":
            self.enter_code(field("code"))
        elif action == "message" and field("wa_id").isdigit() and field("body"):
            self.incoming(field("wa_id"), field("body"), name=field("name"))

    # --- the phone and the customers (tests call these) ----------------------------------------
    @property
    def qr_code(self) -> str:
        return f"2@standin-ref-{self.qr_ref},standin-key,standin-id"

    def _push(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    def link(self) -> None:
        """The phone scans the QR code."""
        with self._lock:
            self.linked, self.mode = True, "MAIN"
            self._push({"type": "linked"})

    def enter_code(self, code: str) -> bool:
        """The phone's owner types the pairing code the dashboard shows; True when it links."""
        clean = "".join(ch for ch in code if ch.isalnum()).upper()
        if not self.pairing_code or clean != self.pairing_code:
            return False
        self.pairing_code = ""
        self.link()
        return True

    def rotate_qr(self) -> None:
        with self._lock:
            self.qr_ref += 1
            self._push({"type": "qr", "code": self.qr_code, "ref": self.qr_ref})

    def _logout(self) -> None:
        self.linked = False
        self.qr_ref += 1
        self._push({"type": "logout"})
        self._push({"type": "qr", "code": self.qr_code, "ref": self.qr_ref})

    def logout(self) -> None:
        """The phone removes the linked device."""
        with self._lock:
            self._logout()

    def set_mode(self, mode: str) -> None:
        """WhatsApp's stream mode: CONFLICT (opened elsewhere), TOS_BLOCK, DEPRECATED_VERSION, MAIN."""
        with self._lock:
            self.mode = mode
            self._push({"type": "mode", "mode": mode})

    def reload(self) -> None:
        """WhatsApp Web reloads itself (it does for its own updates): the page and its scripts start over."""
        with self._lock:
            self._push({"type": "reload"})

    def hang(self) -> None:
        """The page's main thread stops (a runaway script): it answers nothing any more."""
        with self._lock:
            self._push({"type": "hang"})

    def incoming(
        self,
        wa_id: str,
        body: str = "",
        *,
        type: str = "chat",
        name: str = "",
        media: bytes | None = None,
        **extra: Any,
    ) -> str:
        """A customer writes; the serialized WhatsApp Web id of the message. `media`: the file of a
        media message, which the page can then download (without it, the download fails)."""
        chat = f"{wa_id}@c.us"
        with self._lock:
            wamid = f"false_{chat}_3A{next(self._ids):018d}"
            self.chats.add(chat)
            if media is not None:
                self.media[wamid] = (media, str(extra.get("mimetype") or "application/octet-stream"))
                extra.setdefault("size", len(media))
            message = {"id": wamid, "from": chat, "type": type, "body": body, "t": int(time.time())}
            message = {**message, "notifyName": name, **extra}
            self.history.setdefault(chat, []).append(message)
            self.unread[chat] = self.unread.get(chat, 0) + 1
            self._push({"type": "message", "message": message})
        return wamid

    def ack(self, wamid: str, ack: int) -> None:
        """The phone reports a receipt of a message the page sent: 2 delivered, 3 read, 4 played, -1 failed."""
        with self._lock:
            self._push({"type": "ack", "ack": ack, "ids": [wamid]})

    def react(self, wa_id: str, to_wamid: str, emoji: str) -> str:
        with self._lock:
            wamid = f"false_{wa_id}@c.us_3R{next(self._ids):018d}"
            reaction = {"id": wamid, "sender": f"{wa_id}@c.us", "msgId": to_wamid, "reactionText": emoji}
            self._push({"type": "reaction", "reaction": {**reaction, "timestamp": int(time.time() * 1000)}})
        return wamid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args()
    standin = WhatsAppWebStandIn(args.host, args.port).start()
    print(f"WhatsApp Web stand-in on {standin.url}; play the phone at {standin.url}standin/phone", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
