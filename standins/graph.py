"""A local stand-in for Meta's Graph API (the WhatsApp Cloud API part of it).

It answers sends, read receipts, media uploads and look-ups in Meta's shapes, records every accepted send,
posts signed status webhooks back like Meta does, and can be told to misbehave (errors, slow
answers, cut connections, a throughput limit). Tests, the demo and benchmarks reach it through
WHATSAPP_GRAPH_URL; nothing in the application knows it is not Meta.

Phone numbers registered with add_number() answer `GET /{version}/{phone-number-id}` (the channel
ownership check) only to the access tokens given for them.

Control endpoints (JSON, no authentication: bind it to localhost) live under /_standin/:
GET sent, requests, webhooks; POST fail, delay, drop, rate_limit, webhooks, inbound, media, numbers,
templates (add one, reviewed already), template_event (change one and post its webhook), reset.
Message templates live per business account at `/{version}/{waba-id}/message_templates` (GET with
cursor paging, POST submits one as PENDING, DELETE by name and hsm_id).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import heapq
import itertools
import json
import logging
import re
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from apps.whatsapp.signature import sign

logger = logging.getLogger(__name__)

SEND_TYPES = frozenset(
    {
        "text",
        "template",
        "interactive",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "reaction",
        "contacts",
    }
)
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
STATUSES = frozenset({"sent", "delivered", "read", "failed", "played"})
TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
CALLBACK_DATA_MAX = 512
MAX_REQUEST_BYTES = 64 * 1024 * 1024
LOG_LIMIT = 100_000  # requests and webhook deliveries kept for inspection
WEBHOOK_TIMEOUT = 5.0
_VERSION = re.compile(r"v\d+\.\d+")

META_MESSAGES = {
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    368: "(#368) Temporarily blocked for policies violations",
    130429: "(#130429) Rate limit hit",
    131000: "(#131000) Something went wrong",
    131016: "(#131016) Service unavailable",
    131026: "(#131026) Message undeliverable",
    131031: "(#131031) Business Account locked",
    131047: "(#131047) Re-engagement message",
    131048: "(#131048) Spam rate limit hit",
    131049: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "(#131050) The recipient has chosen to stop receiving marketing messages from your business",
    130472: "(#130472) User's number is part of an experiment",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    131064: "(#131064) Message failed to send because the business reached its messaging limit",
    132000: "(#132000) Number of parameters does not match the expected number of params",
    132001: "(#132001) Template name does not exist in the translation",
}


def meta_error(code: int, message: str | None = None, details: str | None = None) -> dict[str, Any]:
    """Meta's error body."""
    text = message or META_MESSAGES.get(code, f"(#{code}) Error")
    return {
        "error": {
            "message": text,
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details or text},
            "fbtrace_id": "A" + secrets.token_urlsafe(15),
        }
    }


def new_wamid() -> str:
    return f"wamid.HBgL{uuid.uuid4().hex.upper()}"


@dataclass(frozen=True)
class _Failure:
    code: int | None  # None: a plain-text server error, not a Meta JSON body
    http_status: int
    message: str | None
    retry_after: int | None


@dataclass(frozen=True)
class _Media:
    content: bytes
    mime_type: str
    sha256: str
    file_size: int


@dataclass(frozen=True)
class _Number:
    tokens: frozenset[str]
    verified_name: str
    display_phone_number: str
    quality_rating: str


@dataclass(frozen=True)
class _WebhookConfig:
    url: str
    app_secret: str
    statuses: tuple[str, ...]
    delay: float


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering

    @classmethod
    def json(cls, status: int, data: Any, **kwargs: Any) -> _Answer:
        return cls(status, json.dumps(data).encode(), **kwargs)

    @classmethod
    def meta(cls, status: int, code: int, details: str | None = None, **kwargs: Any) -> _Answer:
        return cls.json(status, meta_error(code, details=details), **kwargs)


@dataclass(frozen=True)
class InboundDelivery:
    """What became of an injected inbound message: its wamid and the webhook's answer."""

    wamid: str
    status_code: int | None
    error: str = ""


class _BadControl(ValueError):
    pass


class _WebhookPoster:
    """Posts scheduled webhook deliveries in due order from one thread (so a message's statuses
    arrive in the order they were scheduled), without the delays of one message holding up others."""

    def __init__(self, post: Callable[[str, str, dict[str, Any]], object]) -> None:
        self._post = post
        self._heap: list[tuple[float, int, str, str, Callable[[], dict[str, Any]]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._busy = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="graph-standin-webhooks", daemon=True)
        self._thread.start()

    def schedule(self, due: float, url: str, secret: str, build: Callable[[], dict[str, Any]]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), url, secret, build))
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._busy, timeout=timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=WEBHOOK_TIMEOUT + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    self._cond.wait(timeout=self._heap[0][0] - now if self._heap else None)
                if self._stopping:
                    return
                _, _, url, secret, build = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._post(url, secret, build())
            except Exception:  # a bug in one delivery must not stop the others
                logger.exception("graph stand-in: building or posting a webhook failed")
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], standin: GraphStandIn) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections outlive serve_forever(); a client pooling one would otherwise keep
        # talking to a stopped stand-in (or a new one bound to the same port would never see it).
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Meta offers: benchmarks would measure connects otherwise
    timeout = 60  # idle keep-alive connections are closed
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("graph stand-in: " + format, *args)

    def _dispatch(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.close_connection = True
            self._write(_Answer.meta(413 if length > 0 else 400, 100, details="bad Content-Length"))
            return
        body = self.rfile.read(length) if length else b""
        standin = self.server.standin
        try:
            answer = standin._handle(method, self.path, self.headers, body)
        except Exception:
            logger.exception("graph stand-in: error answering %s %s", method, self.path.split("?")[0])
            answer = _Answer(500, b"Internal Server Error", content_type="text/plain")
        if answer.delay > 0 and standin._stopping.wait(answer.delay):
            self.close_connection = True
            return
        if answer.drop:
            self.close_connection = True
            return
        self._write(answer)

    def _write(self, answer: _Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up (e.g. its read timeout): nothing to answer to
            self.close_connection = True


class GraphStandIn:
    """The stand-in server and its Python control API.

    `valid_tokens=None` accepts any non-empty bearer token; a set accepts only those.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        valid_tokens: Iterable[str] | None = None,
        *,
        waba_id: str = "100000000000001",
        display_phone_number: str = "15550000000",
    ) -> None:
        self.host = host
        self.port = port
        self.valid_tokens = set(valid_tokens) if valid_tokens is not None else None
        self.waba_id = waba_id
        self.display_phone_number = display_phone_number
        self._lock = threading.Lock()
        self._sent: list[dict[str, Any]] = []
        self._requests: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._webhook_log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._failures: deque[_Failure] = deque()
        self._delays: deque[float] = deque()
        self._drops = 0
        self._rate_limit: int | None = None
        self._windows: dict[str, deque[float]] = {}
        self._media: dict[str, _Media] = {}
        self._uploads: list[dict[str, Any]] = []
        self._numbers: dict[str, _Number] = {}
        self._webhooks: _WebhookConfig | None = None
        # Message templates per WhatsApp Business Account id, in creation order.
        self._templates: dict[str, list[dict[str, Any]]] = {}
        self._template_ids = itertools.count(880000000000001)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        # What `received_at` and the rate limit's window read; a test that lets time pass on a fake
        # clock sets it to that one.
        self.clock: Callable[[], float] = time.time
        self._thread: threading.Thread | None = None
        self._poster: _WebhookPoster | None = None
        self._client: httpx.Client | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> GraphStandIn:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._client = httpx.Client(timeout=WEBHOOK_TIMEOUT)
        self._poster = _WebhookPoster(self._post_webhook)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="graph-standin",
            daemon=True,
        )
        self._thread.start()
        logger.info("graph stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._poster is not None:
            self._poster.stop()
        if self._client is not None:
            self._client.close()
        self._thread = self._poster = self._client = None

    def __enter__(self) -> GraphStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Graph API stand-in is not started")
        return f"http://{self.host}:{self.port}"

    # --- what happened ---------------------------------------------------------------------------
    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every accepted send, oldest first (a snapshot: safe to read while sends go on).

        Each is a dict: phone_number_id, to, type, content, biz_opaque_callback_data, context,
        wamid, received_at (`clock()`, time.time() unless a test set it) and body (the whole request).
        """
        with self._lock:
            return list(self._sent)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every Graph API request received (accepted or not): method, path, received_at."""
        with self._lock:
            return list(self._requests)

    @property
    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempted: url, payload, status_code (None if unreachable), error."""
        with self._lock:
            return list(self._webhook_log)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every scheduled webhook has been posted; False on timeout."""
        return self._poster.flush(timeout) if self._poster is not None else True

    # --- faults ----------------------------------------------------------------------------------
    def fail_next(
        self,
        code: int | None,
        http_status: int = 400,
        count: int = 1,
        *,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Refuse the next `count` sends with Meta's error `code` (None: a plain-text server error)."""
        failure = _Failure(code, http_status, message, retry_after)
        with self._lock:
            self._failures.extend([failure] * count)

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next `count` Graph API answers for `seconds` (sends are accepted before the wait)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def drop_next(self, count: int = 1) -> None:
        """Accept the next `count` sends, then close the connection without answering."""
        with self._lock:
            self._drops += count

    def set_rate_limit(self, per_second: int | None) -> None:
        """At most `per_second` accepted sends per phone number in any 1 s window (None: no limit)."""
        with self._lock:
            self._rate_limit = per_second
            self._windows.clear()

    def reset(self) -> None:
        """Forget sends, requests, webhook deliveries, pending faults and the rate limit.

        Configuration (tokens, media, webhook target) is kept."""
        with self._lock:
            self._sent.clear()
            self._uploads.clear()
            self._requests.clear()
            self._webhook_log.clear()
            self._failures.clear()
            self._delays.clear()
            self._drops = 0
            self._rate_limit = None
            self._windows.clear()
        if self._poster is not None:
            self._poster.clear()

    # --- configuration ---------------------------------------------------------------------------
    def add_media(
        self, media_id: str, content: bytes, mime_type: str, *, file_size: int | None = None
    ) -> None:
        """Make `media_id` downloadable. `file_size` overrides the size the metadata claims."""
        media = _Media(
            content=content,
            mime_type=mime_type,
            sha256=hashlib.sha256(content).hexdigest(),
            file_size=len(content) if file_size is None else file_size,
        )
        with self._lock:
            self._media[media_id] = media

    def add_number(
        self,
        phone_number_id: str,
        token: str,
        *,
        verified_name: str = "Stand-in Business",
        display_phone_number: str | None = None,
        quality_rating: str = "GREEN",
    ) -> None:
        """Register `phone_number_id` as reachable with `token` (call again to add more tokens)."""
        if not token:
            raise ValueError("a number needs a token that may read it")
        with self._lock:
            known = self._numbers.get(phone_number_id)
            self._numbers[phone_number_id] = _Number(
                tokens=frozenset({token, *(known.tokens if known else ())}),
                verified_name=verified_name,
                display_phone_number=display_phone_number or self.display_phone_number,
                quality_rating=quality_rating,
            )

    def configure_webhooks(
        self,
        url: str | None,
        app_secret: str = "",
        statuses: Iterable[str] = ("sent", "delivered", "read"),
        delay: float = 0.0,
    ) -> None:
        """Post status webhooks for each accepted send to `url` (None: stop posting), `delay` apart."""
        if url is None:
            with self._lock:
                self._webhooks = None
            return
        chosen = tuple(statuses)
        unknown = set(chosen) - STATUSES
        if unknown:
            raise ValueError(f"unknown statuses: {sorted(unknown)}")
        if not app_secret:
            raise ValueError("an app secret is needed to sign webhooks")
        with self._lock:
            self._webhooks = _WebhookConfig(url, app_secret, chosen, max(0.0, delay))

    # --- message templates ----------------------------------------------------------------------------
    def add_template(
        self,
        waba_id: str,
        name: str,
        language: str = "es",
        *,
        category: str = "MARKETING",
        status: str = "APPROVED",
        components: list[dict[str, Any]] | None = None,
        quality: str = "GREEN",
    ) -> dict[str, Any]:
        """Register a template as if it had been created at Meta (reviewed already: `status`)."""
        template = {
            "id": str(next(self._template_ids)),
            "name": name,
            "language": language,
            "status": status,
            "category": category,
            "components": components or [{"type": "BODY", "text": f"{name}"}],
            "quality_score": {"score": quality},
        }
        with self._lock:
            self._templates.setdefault(waba_id, []).append(template)
        return dict(template)

    def templates(self, waba_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(template) for template in self._templates.get(waba_id, [])]

    def template_event(
        self, waba_id: str, template_id: str, field: str, value: dict[str, Any]
    ) -> tuple[int | None, str]:
        """Change a template as Meta's review would and post the matching signed webhook now:
        `field` message_template_status_update (value: event, reason), message_template_quality_update
        (new_quality_score) or template_category_update (new_category)."""
        with self._lock:
            config = self._webhooks
            template = next((t for t in self._templates.get(waba_id, []) if t["id"] == template_id), None)
            if template is None:
                raise KeyError(f"no template {template_id} in account {waba_id}")
            event = {
                "message_template_id": int(template_id),
                "message_template_name": template["name"],
                "message_template_language": template["language"],
            }
            if field == "message_template_status_update":
                template["status"] = str(value["event"])
                event.update(event=template["status"], reason=str(value.get("reason", "NONE")))
            elif field == "message_template_quality_update":
                event.update(
                    previous_quality_score=template["quality_score"]["score"],
                    new_quality_score=str(value["new_quality_score"]),
                )
                template["quality_score"] = {"score": event["new_quality_score"]}
            elif field == "template_category_update":
                event.update(previous_category=template["category"], new_category=str(value["new_category"]))
                template["category"] = event["new_category"]
            else:
                raise ValueError(f"unknown template webhook field {field!r}")
        if config is None:
            raise RuntimeError("configure_webhooks() first: there is nowhere to post the event")
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": waba_id, "time": int(time.time()), "changes": [{"field": field, "value": event}]}
            ],
        }
        return self._post_webhook(config.url, config.app_secret, payload)

    def _templates_call(
        self, method: str, waba_id: str, headers: Message, query: dict[str, str], body: bytes
    ) -> _Answer:
        """`/{waba-id}/message_templates`: GET (paged with cursors), POST (submit: PENDING), DELETE."""
        if not self._authorized(headers.get("Authorization", "")):
            return _Answer.meta(401, 190)
        if method == "GET":
            return self._templates_page(waba_id, query)
        if method == "DELETE":
            name, hsm_id = query.get("name", ""), query.get("hsm_id", "")
            with self._lock:
                kept = [
                    t
                    for t in self._templates.get(waba_id, [])
                    if not (t["name"] == name and (not hsm_id or t["id"] == hsm_id))
                ]
                removed = len(self._templates.get(waba_id, [])) - len(kept)
                self._templates[waba_id] = kept
            if not name or not removed:
                return _Answer.meta(400, 100, details=f"Message template {name!r} not found.")
            return _Answer.json(200, {"success": True})
        if method != "POST":
            return _Answer.meta(400, 100, details=f"Unsupported {method.lower()} request.")
        try:
            data = json.loads(body)
        except ValueError:
            return _Answer.meta(400, 100, details="The request body is not valid JSON.")
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) and data[key] for key in ("name", "language", "category")
        ):
            return _Answer.meta(400, 100, details="name, language and category are required.")
        if not isinstance(data.get("components"), list) or not data["components"]:
            return _Answer.meta(400, 100, details="components is required.")
        with self._lock:
            if any(
                t["name"] == data["name"] and t["language"] == data["language"]
                for t in self._templates.get(waba_id, [])
            ):
                answer = meta_error(100, details="Content in this language already exists.")
                answer["error"]["error_subcode"] = 2388024
                return _Answer.json(400, answer)
        created = self.add_template(
            waba_id,
            data["name"],
            data["language"],
            category=data["category"],
            status="PENDING",
            components=data["components"],
            quality="UNKNOWN",
        )
        return _Answer.json(200, {"id": created["id"], "status": "PENDING", "category": data["category"]})

    def _templates_page(self, waba_id: str, query: dict[str, str]) -> _Answer:
        try:
            limit = max(1, min(int(query.get("limit", "25")), 1000))
            start = int(base64.b64decode(query["after"]).decode()) if query.get("after") else 0
        except ValueError:
            return _Answer.meta(400, 100, details="Invalid limit or cursor.")
        items = self.templates(waba_id)
        page = items[start : start + limit]
        result: dict[str, Any] = {"data": page}
        if page:
            cursors = {
                "before": base64.b64encode(str(start).encode()).decode(),
                "after": base64.b64encode(str(start + len(page)).encode()).decode(),
            }
            result["paging"] = {"cursors": cursors}
            if start + len(page) < len(items):
                result["paging"]["next"] = f"{self.url}/message_templates?after={cursors['after']}"
        return _Answer.json(200, result)

    def inject_inbound(
        self,
        phone_number_id: str,
        from_wa_id: str,
        text: str,
        name: str = "",
        user_id: str | None = None,
    ) -> InboundDelivery:
        """Post (now, from this thread) a customer's text message as Meta's signed webhook.

        `from_wa_id` may be empty for a user known only by `user_id` (business-scoped id)."""
        return self._inject(
            phone_number_id, from_wa_id, {"type": "text", "text": {"body": text}}, name, user_id
        )

    def inject_list_reply(
        self, phone_number_id: str, from_wa_id: str, row_id: str, title: str, name: str = ""
    ) -> InboundDelivery:
        """Post (now) a customer's pick from a list message (`interactive.list_reply`), as Meta does."""
        content = {
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": row_id, "title": title}},
        }
        return self._inject(phone_number_id, from_wa_id, content, name)

    def inject_reaction(
        self, phone_number_id: str, from_wa_id: str, message_id: str, emoji: str
    ) -> InboundDelivery:
        """Post (now) a customer's reaction to the message `message_id` as Meta's signed webhook; an
        empty `emoji` removes the customer's reaction, as Meta sends it."""
        content = {"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}}
        return self._inject(phone_number_id, from_wa_id, content)

    def _inject(
        self,
        phone_number_id: str,
        from_wa_id: str,
        content: dict[str, Any],
        name: str = "",
        user_id: str | None = None,
    ) -> InboundDelivery:
        with self._lock:
            config = self._webhooks
        if config is None:
            raise RuntimeError("configure_webhooks() first: there is nowhere to post the message")
        wamid = new_wamid()
        contact: dict[str, Any] = {"profile": {"name": name}}
        message: dict[str, Any] = {"id": wamid, "timestamp": str(int(time.time())), **content}
        if from_wa_id:
            contact["wa_id"] = from_wa_id
            message["from"] = from_wa_id
        if user_id:
            contact["user_id"] = user_id
            message["from_user_id"] = user_id
        payload = self._envelope(phone_number_id, {"contacts": [contact], "messages": [message]})
        status_code, error = self._post_webhook(config.url, config.app_secret, payload)
        return InboundDelivery(wamid, status_code, error)

    # --- webhooks --------------------------------------------------------------------------------
    def _envelope(self, phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
        metadata = {"display_phone_number": self.display_phone_number, "phone_number_id": phone_number_id}
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
                        }
                    ],
                }
            ],
        }

    def _status_payload(self, record: dict[str, Any], status: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": record["wamid"],
            "status": status,
            "timestamp": str(int(time.time())),  # when posted, as Meta stamps the event
            "recipient_id": record["to"],
        }
        if record["biz_opaque_callback_data"] is not None:
            item["biz_opaque_callback_data"] = record["biz_opaque_callback_data"]
        if status == "failed":
            item["errors"] = [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message Undeliverable."},
                }
            ]
        return self._envelope(record["phone_number_id"], {"statuses": [item]})

    def _schedule_statuses(self, record: dict[str, Any]) -> None:
        config, poster = self._webhooks, self._poster
        if config is None or poster is None:
            return
        start = time.monotonic()
        for number, status in enumerate(config.statuses, start=1):
            poster.schedule(
                start + config.delay * number,
                config.url,
                config.app_secret,
                functools.partial(self._status_payload, record, status),
            )

    def _post_webhook(self, url: str, secret: str, payload: dict[str, Any]) -> tuple[int | None, str]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)}
        status_code: int | None = None
        error = ""
        client = self._client
        try:
            if client is None:
                raise RuntimeError("the stand-in is stopped")
            response = client.post(url, content=body, headers=headers)
            status_code = response.status_code
            if not response.is_success:
                error = f"HTTP {status_code}"
                logger.warning("graph stand-in: webhook to %s answered %s", url, status_code)
        except (httpx.HTTPError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning("graph stand-in: webhook to %s failed: %s", url, error)
        with self._lock:
            self._webhook_log.append(
                {"url": url, "payload": payload, "status_code": status_code, "error": error}
            )
        return status_code, error

    # --- request handling (called from the server's threads) ---------------------------------------
    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> _Answer:
        segments = [unquote(part) for part in urlsplit(target).path.split("/") if part]
        if segments[:1] == ["_standin"]:
            return self._control(method, segments[1:], body)
        is_download = len(segments) == 2 and segments[0] == "media"
        is_graph = len(segments) >= 2 and _VERSION.fullmatch(segments[0]) is not None
        if not (is_download or is_graph):
            return _Answer(404, b"Not Found", content_type="text/plain")
        with self._lock:
            self._requests.append(
                {"method": method, "path": "/" + "/".join(segments), "received_at": self.clock()}
            )
            delay = self._delays.popleft() if self._delays else 0.0
        query = {key: values[-1] for key, values in parse_qs(urlsplit(target).query).items()}
        if len(segments) == 3 and segments[2] == "message_templates" and not is_download:
            answer = self._templates_call(method, segments[1], headers, query, body)
        else:
            answer = self._graph(method, segments, headers, body, is_download)
        answer.delay = delay
        return answer

    def _graph(
        self, method: str, segments: list[str], headers: Message, body: bytes, download: bool
    ) -> _Answer:
        if not self._authorized(headers.get("Authorization", "")):
            return _Answer.meta(401, 190)
        if download:
            return self._download(segments[1]) if method == "GET" else _Answer(405, content_type="text/plain")
        if method == "POST" and len(segments) == 3 and segments[2] == "messages":
            return self._messages(segments[1], body)
        if method == "POST" and len(segments) == 3 and segments[2] == "media":
            return self._upload(headers, body)
        if method == "GET" and len(segments) == 2:
            with self._lock:
                number = self._numbers.get(segments[1])
                numbers_known, is_media = bool(self._numbers), segments[1] in self._media
            if number is not None or (numbers_known and not is_media):
                return self._phone_number(segments[1], number, _bearer(headers.get("Authorization", "")))
            return self._media_metadata(segments[1])
        return _Answer.meta(400, 100, details=f"Unsupported {method.lower()} request.")

    def _authorized(self, header: str) -> bool:
        token = _bearer(header)
        return bool(token) and (self.valid_tokens is None or token in self.valid_tokens)

    def _phone_number(self, phone_number_id: str, number: _Number | None, token: str) -> _Answer:
        """Meta's phone number node, for a token of that number only. A token that reads another
        number is valid but lacks the permission (error 100, subcode 33); any other token is 190."""
        if number is not None and token in number.tokens:
            return _Answer.json(
                200,
                {
                    "verified_name": number.verified_name,
                    "display_phone_number": number.display_phone_number,
                    "id": phone_number_id,
                    "quality_rating": number.quality_rating,
                },
            )
        with self._lock:
            known = any(token in other.tokens for other in self._numbers.values())
        if known or (self.valid_tokens is not None and token in self.valid_tokens):
            details = (
                f"Unsupported get request. Object with ID '{phone_number_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation."
            )
            answer = meta_error(100, message=details)
            answer["error"]["error_subcode"] = 33
            return _Answer.json(400, answer)
        return _Answer.meta(401, 190)

    def _messages(self, phone_number_id: str, body: bytes) -> _Answer:
        try:
            payload = json.loads(body)
        except ValueError:
            return _Answer.meta(400, 100, details="The request body is not valid JSON.")
        if not isinstance(payload, dict):
            return _Answer.meta(400, 100, details="The request body must be a JSON object.")
        if payload.get("messaging_product") != "whatsapp":
            return _Answer.meta(400, 100, details="The parameter messaging_product is required.")
        if payload.get("status") == "read":
            if not isinstance(payload.get("message_id"), str) or not payload["message_id"]:
                return _Answer.meta(400, 100, details="The parameter message_id is required.")
            return _Answer.json(200, {"success": True})
        problem = send_problem(payload)
        if problem:
            return _Answer.meta(400, 100, details=problem)
        kind = payload.get("type", "text")
        record = {
            "phone_number_id": phone_number_id,
            "to": payload["to"],
            "type": kind,
            "content": payload[kind],
            "biz_opaque_callback_data": payload.get("biz_opaque_callback_data"),
            "context": payload.get("context"),
            "wamid": new_wamid(),
            "received_at": self.clock(),
            "body": payload,
        }
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            if failure is None and not self._within_rate_limit(phone_number_id, self.clock()):
                failure = _Failure(130429, 400, None, None)
            drop = failure is None and self._drops > 0
            if drop:
                self._drops -= 1
            if failure is None:
                self._sent.append(record)
        if failure is not None:
            return self._failure_answer(failure)
        self._schedule_statuses(record)
        return _Answer.json(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": record["to"], "wa_id": record["to"]}],
                "messages": [{"id": record["wamid"]}],
            },
            drop=drop,
        )

    def _within_rate_limit(self, phone_number_id: str, now: float) -> bool:
        """Count this send in the number's sliding 1 s window; False when it is full (lock held)."""
        if self._rate_limit is None:
            return True
        window = self._windows.setdefault(phone_number_id, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self._rate_limit:
            return False
        window.append(now)
        return True

    @staticmethod
    def _failure_answer(failure: _Failure) -> _Answer:
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        if failure.code is None:
            return _Answer(
                failure.http_status, b"Internal Server Error", content_type="text/plain", headers=headers
            )
        data = meta_error(failure.code, message=failure.message)
        return _Answer.json(failure.http_status, data, headers=headers)

    def _upload(self, headers: Message, body: bytes) -> _Answer:
        """Meta's media upload: multipart/form-data with messaging_product, type and the file."""
        content_type = headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return _Answer.meta(400, 100, details="Upload the file as multipart/form-data.")
        form = BytesParser(policy=email_policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        fields: dict[str, Any] = {}
        for part in form.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                fields[name] = part
        if "file" not in fields:
            return _Answer.meta(400, 100, details="The parameter file is required.")
        product = fields.get("messaging_product")
        if product is None or product.get_payload(decode=True) != b"whatsapp":
            return _Answer.meta(400, 100, details="The parameter messaging_product is required.")
        file_part = fields["file"]
        content = file_part.get_payload(decode=True) or b""
        media_id = f"MEDIA-{new_wamid().removeprefix('wamid.')}"
        self.add_media(media_id, content, file_part.get_content_type())
        with self._lock:
            self._uploads.append(
                {
                    "id": media_id,
                    "filename": file_part.get_filename() or "",
                    "mime_type": file_part.get_content_type(),
                }
            )
        return _Answer.json(200, {"id": media_id})

    @property
    def uploads(self) -> list[dict[str, Any]]:
        """The files uploaded so far (id, filename, mime_type), oldest first."""
        with self._lock:
            return list(self._uploads)

    def _media_metadata(self, media_id: str) -> _Answer:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            details = f"Unsupported get request. Object with ID '{media_id}' does not exist."
            return _Answer.meta(400, 100, details=details)
        return _Answer.json(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/media/{media_id}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": media.file_size,
                "id": media_id,
            },
        )

    def _download(self, media_id: str) -> _Answer:
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return _Answer(404, b"Not Found", content_type="text/plain")
        return _Answer(200, media.content, content_type=media.mime_type)

    # --- control API -----------------------------------------------------------------------------
    def _control(self, method: str, segments: list[str], body: bytes) -> _Answer:
        name = "/".join(segments)
        if method == "GET" and name in ("sent", "requests", "webhooks"):
            return _Answer.json(200, {name: getattr(self, name)})
        if method != "POST":
            return _Answer.json(404, {"error": f"no control endpoint {method} /_standin/{name}"})
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise _BadControl("the body must be a JSON object")
            return self._control_post(name, data)
        except (ValueError, TypeError, KeyError) as exc:
            return _Answer.json(400, {"error": f"{type(exc).__name__}: {exc}"})
        except RuntimeError as exc:
            return _Answer.json(409, {"error": str(exc)})

    def _control_post(self, name: str, data: dict[str, Any]) -> _Answer:
        ok = _Answer.json(200, {"ok": True})
        if name == "fail":
            code = data.get("code")
            self.fail_next(
                None if code is None else int(code),
                http_status=int(data.get("http_status", 400)),
                count=int(data.get("count", 1)),
                message=data.get("message"),
                retry_after=None if data.get("retry_after") is None else int(data["retry_after"]),
            )
            return ok
        if name == "delay":
            self.delay_next(float(data["seconds"]), count=int(data.get("count", 1)))
            return ok
        if name == "drop":
            self.drop_next(count=int(data.get("count", 1)))
            return ok
        if name == "rate_limit":
            per_second = data.get("per_second")
            self.set_rate_limit(None if per_second is None else int(per_second))
            return ok
        if name == "webhooks":
            self.configure_webhooks(
                data.get("url"),
                str(data.get("app_secret", "")),
                statuses=data.get("statuses", ("sent", "delivered", "read")),
                delay=float(data.get("delay", 0.0)),
            )
            return ok
        if name == "inbound":
            delivery = self.inject_inbound(
                str(data["phone_number_id"]),
                str(data.get("from", "")),
                str(data["text"]),
                name=str(data.get("name", "")),
                user_id=data.get("user_id"),
            )
            return _Answer.json(
                200, {"wamid": delivery.wamid, "status_code": delivery.status_code, "error": delivery.error}
            )
        if name == "media":
            content = base64.b64decode(data["content_base64"], validate=True)
            self.add_media(
                str(data["media_id"]), content, str(data.get("mime_type", "application/octet-stream"))
            )
            return ok
        if name == "numbers":
            self.add_number(
                str(data["phone_number_id"]),
                str(data["token"]),
                verified_name=str(data.get("verified_name", "Stand-in Business")),
                display_phone_number=data.get("display_phone_number"),
            )
            return ok
        if name == "templates":
            created = self.add_template(
                str(data["waba_id"]),
                str(data["name"]),
                str(data.get("language", "es")),
                category=str(data.get("category", "MARKETING")),
                status=str(data.get("status", "APPROVED")),
                components=data.get("components"),
            )
            return _Answer.json(200, created)
        if name == "template_event":
            status_code, error = self.template_event(
                str(data["waba_id"]), str(data["template_id"]), str(data["field"]), dict(data["value"])
            )
            return _Answer.json(200, {"status_code": status_code, "error": error})
        if name == "reset":
            self.reset()
            return ok
        return _Answer.json(404, {"error": f"no control endpoint POST /_standin/{name}"})


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def send_problem(payload: dict[str, Any]) -> str | None:
    """Why Meta would refuse this send with error 100, or None when it looks right."""
    to = payload.get("to")
    if not isinstance(to, str) or not to:
        return "The parameter to is required."
    kind = payload.get("type", "text")
    if kind not in SEND_TYPES:
        return f"Unsupported message type: {kind!r}."
    content = payload.get(kind)
    if kind == "contacts":
        return None if isinstance(content, list) and content else "contacts must be a non-empty list."
    if not isinstance(content, dict):
        return f"The parameter {kind} is required."
    callback = payload.get("biz_opaque_callback_data")
    if callback is not None and (not isinstance(callback, str) or len(callback) > CALLBACK_DATA_MAX):
        return f"biz_opaque_callback_data must be a string of at most {CALLBACK_DATA_MAX} characters."
    context = payload.get("context")
    if context is not None and not (isinstance(context, dict) and isinstance(context.get("message_id"), str)):
        return "context.message_id must be a string."
    return _content_problem(kind, content)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _content_problem(kind: str, content: dict[str, Any]) -> str | None:
    if kind == "text":
        body = _text(content.get("body"))
        if not body:
            return "text.body is required."
        return f"text.body is longer than {TEXT_MAX} characters." if len(body) > TEXT_MAX else None
    if kind == "template":
        language = content.get("language")
        if (
            not _text(content.get("name"))
            or not isinstance(language, dict)
            or not _text(language.get("code"))
        ):
            return "template.name and template.language.code are required."
        return None
    if kind in MEDIA_TYPES:
        if bool(_text(content.get("id"))) == bool(_text(content.get("link"))):
            return f"{kind} needs exactly one of id and link."
        return None
    if kind == "location":
        if content.get("latitude") is None or content.get("longitude") is None:
            return "location.latitude and location.longitude are required."
        return None
    if kind == "reaction":
        if not _text(content.get("message_id")) or not isinstance(content.get("emoji"), str):
            return "reaction.message_id and reaction.emoji are required."
        return None
    return _interactive_problem(content)


def _interactive_problem(content: dict[str, Any]) -> str | None:
    kind = content.get("type")
    if not isinstance(kind, str) or not kind:
        return "interactive.type is required."
    body = content.get("body")
    text = _text(body.get("text")) if isinstance(body, dict) else ""
    if kind in ("button", "list") and not text:
        return "interactive.body.text is required."
    if len(text) > INTERACTIVE_BODY_MAX:
        return f"interactive.body.text is longer than {INTERACTIVE_BODY_MAX} characters."
    action = content.get("action")
    if kind == "button":
        buttons = action.get("buttons") if isinstance(action, dict) else None
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "interactive.action.buttons must hold 1 to 3 buttons."
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            title = _text(reply.get("title")) if isinstance(reply, dict) else ""
            if not title or len(title) > 20:
                return "Each button needs a title of 1 to 20 characters."
    if kind == "list":
        sections = action.get("sections") if isinstance(action, dict) else None
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            return "interactive.action.sections must hold 1 to 10 sections."
        for section in sections:
            rows = section.get("rows") if isinstance(section, dict) else None
            if not isinstance(rows, list) or not rows:
                return "Each section needs rows."
            for row in rows:
                title = _text(row.get("title")) if isinstance(row, dict) else ""
                if not title or len(title) > 24:
                    return "Each row needs a title of 1 to 24 characters."
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.graph", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", action="append", help="a valid bearer token (repeat; default: any)")
    parser.add_argument("--webhook-url", help="where to post status webhooks (e.g. .../webhooks/whatsapp/)")
    parser.add_argument("--app-secret", default="", help="the app secret that signs webhooks")
    parser.add_argument("--statuses", default="sent,delivered,read", help="comma-separated, in order")
    parser.add_argument("--webhook-delay", type=float, default=0.0, help="seconds between statuses")
    parser.add_argument("--rate-limit", type=int, help="sends per second per phone number")
    parser.add_argument("--display-phone-number", default="15550000000")
    parser.add_argument(
        "--number",
        action="append",
        default=[],
        metavar="PHONE_NUMBER_ID=TOKEN",
        help="a number and its token",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")

    standin = GraphStandIn(
        args.host, args.port, valid_tokens=args.token, display_phone_number=args.display_phone_number
    )
    if args.webhook_url:
        statuses = [s.strip() for s in args.statuses.split(",") if s.strip()]
        standin.configure_webhooks(args.webhook_url, args.app_secret, statuses, delay=args.webhook_delay)
    standin.set_rate_limit(args.rate_limit)
    for number in args.number:
        phone_number_id, _, token = number.partition("=")
        standin.add_number(phone_number_id, token)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    standin.start()
    print(f"Graph API stand-in on {standin.url}", flush=True)
    stop.wait()
    standin.stop()


if __name__ == "__main__":
    main()
