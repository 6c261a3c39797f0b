"""A local stand-in for LLM servers, so tests drive the production path (litellm over real HTTP).

One server speaks:
- OpenAI-compatible: `POST /v1/chat/completions` (also `/chat/completions`, `/api/v0/chat/completions`),
  `GET /v1/models`; Anthropic: `POST /v1/messages`; Gemini: `POST [/v1beta]/models/{model}:generateContent`;
  Ollama: `POST /api/chat`, `GET /api/tags`, `POST /api/pull`;
- LM Studio's REST API: v1 (0.4+) `GET /api/v1/models` (with `loaded_instances`), `POST /api/v1/models/load`
  `{"model"}`, `POST /api/v1/models/unload` `{"instance_id"}`, and the older v0 `GET /api/v0/models`
  (`state`: "loaded" / "not-loaded").

Tests control it: the answer (fixed text, or an echo of the last user message), how long every chat answer
takes (`latency`, as a real provider's 1-10 s), a provider's rate limit (`limit_rate`: 429 beyond N requests
per minute, checked over a shorter window if asked), faults for the next N chat
requests (an HTTP status, a stall, malformed JSON, an empty answer), optionally only for one model, and read
back every request received (`requests`), with how long the stand-in itself took to answer it.

Function calling (OpenAI-compatible answers only): `next_tool_calls([...])` makes the next answer call
those tools, as given; `act_as_booking_agent()` makes every request that offers tools follow a fixed,
deterministic script driven by what the conversation says (see `booking_step`): "cita" / "book" ->
find_slots -> book the first slot; "cancelar" / "cancel" -> my_bookings -> cancel the first;
"cambiar" / "change" -> my_bookings -> find_slots on the booking's day (on the day after today, in the
booking's offset, when the message says "mañana" / "tomorrow") -> reschedule to the first other slot;
after the last tool it answers with the tool result's `confirmation` (or its `message` / `error`).

    with LLMStandIn() as llm:
        llm.fail_next(1, status=500)
        ...  # point a provider at llm.url (or llm.openai_base for OpenAI-compatible clients)
        assert llm.chat_requests()[0].body["messages"][-1]["content"] == "hola"
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATHS = {"/v1/chat/completions", "/chat/completions", "/api/v0/chat/completions"}
ANTHROPIC_PATH = "/v1/messages"
OLLAMA_CHAT_PATH = "/api/chat"
GEMINI_PATH = re.compile(r"^(?:/v1beta|/v1)?/models/(?P<model>[^/:]+):generateContent$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes
    received_at: float
    duration: float = 0.0  # seconds the stand-in spent on it, stalls included

    @property
    def model(self) -> str:
        gemini = GEMINI_PATH.match(self.path)
        if gemini:
            return gemini["model"]
        return str(self.body.get("model", "")) if isinstance(self.body, dict) else ""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages, Gemini's `contents` turned into the same {role, content} shape."""
        if not isinstance(self.body, dict):
            return []
        if "contents" in self.body:
            return [
                {"role": "assistant" if c.get("role") == "model" else "user", "content": c.get("parts", [])}
                for c in self.body["contents"]
            ]
        return list(self.body.get("messages", []))

    @property
    def system(self) -> str:
        """A system prompt sent apart from the messages (Anthropic's `system`, Gemini's `system_instruction`)."""
        if not isinstance(self.body, dict):
            return ""
        instruction = self.body.get("system_instruction") or self.body.get("systemInstruction") or {}
        return _content_text(self.body.get("system") or instruction.get("parts"))

    @property
    def texts(self) -> list[tuple[str, str]]:
        """(role, text) of every message, content blocks flattened; a separate system prompt first."""
        head = [("system", self.system)] if self.system else []
        return head + [(str(m.get("role", "")), _content_text(m.get("content"))) for m in self.messages]


@dataclass
class Fault:
    kind: str  # "status" | "stall" | "malformed" | "empty"
    times: int | None  # None: every matching request
    model: str | None = None  # only requests for this model
    status: int = 500
    seconds: float = 0.0
    body: Any = None
    after: int = 0  # matching requests let through before this fault starts


@dataclass
class LocalModel:
    key: str
    loaded: bool = False
    instances: list[str] = field(default_factory=list)


class LLMStandIn:
    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.answer: str | None = "Hola, soy el asistente virtual."  # None: echo the last user message
        self.usage: tuple[int, int] | None = None  # (prompt, completion) tokens; None: counted in words
        self.required_key: str | None = None  # when set, requests without it get 401
        self.requests: list[RecordedRequest] = []
        self.lmstudio_models: dict[str, LocalModel] = {
            "qwen2.5-7b-instruct": LocalModel("qwen2.5-7b-instruct"),
            "llama-3.2-3b-instruct": LocalModel("llama-3.2-3b-instruct"),
        }
        self.lmstudio_v1 = True  # False: an LM Studio before 0.4, with the v0 API only
        self.ollama_models: list[str] = ["llama3.2:latest"]
        self.ollama_pullable: set[str] | None = None  # None: any name can be pulled
        self.ollama_pull_error = ""  # set: a streamed pull ends with this error line
        self.latency = 0.0  # seconds every chat answer takes (a real model thinks for 1-10 s)
        self.rpm: int | None = None  # requests per minute accepted; beyond: 429 (limit_rate)
        self.rpm_window = 60.0
        self.rate_limited = 0  # chat requests answered 429 by the rate limit
        self.in_flight = 0
        self.peak_in_flight = 0  # the most chat requests being answered at once
        self._accepted: list[float] = []  # `clock()` times of chat requests within the rate window
        # The rate window's clock; a test that lets time pass on a fake clock sets it to that one.
        self.clock: Callable[[], float] = time.monotonic
        self._faults: list[Fault] = []
        self._tool_calls: list[list[dict[str, Any]]] = []  # scripted answers, first one next
        self.booking_agent = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> LLMStandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        server.block_on_close = False  # a stalled request must not hold up stop()
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="llm-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LLMStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    # --- control -------------------------------------------------------------------------
    def echo(self) -> None:
        self.answer = None

    def fail_next(
        self, n: int = 1, *, status: int = 500, model: str | None = None, body: Any = None, after: int = 0
    ) -> None:
        """The next `n` chat requests (after `after` more that go through) answer `status`."""
        self._add(Fault("status", n, model, status=status, body=body, after=after))

    def stall(self, seconds: float, *, times: int | None = 1, model: str | None = None) -> None:
        self._add(Fault("stall", times, model, seconds=seconds))

    def malformed_next(self, n: int = 1, *, model: str | None = None) -> None:
        self._add(Fault("malformed", n, model))

    def empty_next(self, n: int = 1, *, model: str | None = None) -> None:
        self._add(Fault("empty", n, model))

    def next_tool_calls(self, calls: list[dict[str, Any]]) -> None:
        """The next request offering tools is answered with these calls: [{"name", "arguments"}]."""
        with self._lock:
            self._tool_calls.append(calls)

    def act_as_booking_agent(self) -> None:
        self.booking_agent = True

    def _tool_answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """(tool calls, text) for a request that offers tools; ([], None) to answer as usual."""
        if not body.get("tools") or body.get("tool_choice") == "none":
            if body.get("tools") and self.booking_agent:
                return [], _last_tool_text(list(body.get("messages", [])))
            return [], None
        with self._lock:
            if self._tool_calls:
                return self._tool_calls.pop(0), None
        if self.booking_agent:
            return booking_step(list(body.get("messages", [])))
        return [], None

    def limit_rate(self, rpm: int, *, window: float = 60.0) -> None:
        """Accept `rpm` chat requests a minute, as a provider's quota: at most rpm * window / 60 in any
        `window` seconds (sliding); the others get 429. A short window catches bursts in a short test."""
        with self._lock:
            self.rpm, self.rpm_window = rpm, window
            self._accepted.clear()

    def _over_rate(self) -> bool:
        with self._lock:
            if self.rpm is None:
                return False
            now = self.clock()
            self._accepted = [t for t in self._accepted if t > now - self.rpm_window]
            if len(self._accepted) >= self.rpm * self.rpm_window / 60:
                self.rate_limited += 1
                return True
            self._accepted.append(now)
            return False

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def reset(self) -> None:
        """Faults and recorded requests gone; the answer and models stay as set."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self._accepted.clear()
            self.rate_limited = 0
            self.peak_in_flight = self.in_flight

    def chat_requests(self) -> list[RecordedRequest]:
        paths = CHAT_PATHS | {ANTHROPIC_PATH, OLLAMA_CHAT_PATH}
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == "POST" and (r.path in paths or GEMINI_PATH.match(r.path))
            ]

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, model: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.model is not None and fault.model != model:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer_for(self, messages: list[dict[str, Any]]) -> str:
        if self.answer is not None:
            return self.answer
        for message in reversed(messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""

    def _usage_for(self, messages: list[dict[str, Any]], text: str, system: Any = None) -> tuple[int, int]:
        if self.usage is not None:
            return self.usage
        words = sum(len(_content_text(m.get("content")).split()) for m in messages)
        return words + len(_content_text(system).split()), len(text.split())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks (Anthropic, OpenAI multi-part)
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


class _Handler(BaseHTTPRequestHandler):
    standin: LLMStandIn
    _recorded: RecordedRequest
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    # --- plumbing ------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0]
        recorded = RecordedRequest(
            method, path, {k.lower(): v for k, v in self.headers.items()}, body, raw, time.time()
        )
        self.standin._record(recorded)
        self._recorded = recorded
        try:
            self._route(method, path, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer
        finally:
            recorded.duration = time.perf_counter() - started

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None, ctype: str = "") -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.standin.required_key
        if key is None:
            return True
        given = (
            self.headers.get("x-api-key")
            or self.headers.get("x-goog-api-key")
            or self.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        return given == key

    def _route(self, method: str, path: str, body: Any) -> None:
        routes = {
            ("GET", "/v1/models"): self._openai_models,
            ("GET", "/models"): self._openai_models,
            ("GET", "/api/v0/models"): self._lmstudio_v0_models,
            ("GET", "/api/v1/models"): self._lmstudio_v1_models,
            ("POST", "/api/v1/models/load"): self._lmstudio_load,
            ("POST", "/api/v1/models/unload"): self._lmstudio_unload,
            ("GET", "/api/tags"): self._ollama_tags,
            ("POST", "/api/pull"): self._ollama_pull,
        }
        if method == "POST" and (path in CHAT_PATHS or path in (ANTHROPIC_PATH, OLLAMA_CHAT_PATH)):
            self._chat(path, self._recorded)
            return
        if method == "POST" and GEMINI_PATH.match(path):
            self._chat("gemini", self._recorded)
            return
        handler = routes.get((method, path))
        if path.startswith("/api/v1/") and not self.standin.lmstudio_v1:
            handler = None
        if handler is None:
            self._send(404, {"error": f"no route for {method} {path}"})
            return
        handler(body if isinstance(body, dict) else {})

    # --- chat ----------------------------------------------------------------------------
    def _chat(self, path: str, request: RecordedRequest) -> None:
        standin = self.standin
        body = request.body if isinstance(request.body, dict) else {}
        if not self._authorized():
            self._error(path, 401, "invalid api key")
            return
        if standin._over_rate():
            self._error(path, 429, "rate limit exceeded: requests per minute")
            return
        with standin._lock:
            standin.in_flight += 1
            standin.peak_in_flight = max(standin.peak_in_flight, standin.in_flight)
        try:
            if standin.latency:
                standin._stopping.wait(standin.latency)
            self._answer_chat(path, request, body)
        finally:
            with standin._lock:
                standin.in_flight -= 1

    def _answer_chat(self, path: str, request: RecordedRequest, body: dict[str, Any]) -> None:
        standin = self.standin
        model = request.model
        fault = standin._take_fault(model)
        if fault is not None and fault.kind == "stall":
            standin._stopping.wait(fault.seconds)
            fault = None
        if fault is not None and fault.kind == "status":
            if fault.body is not None:
                self._send(fault.status, fault.body)
            else:
                self._error(path, fault.status, f"stand-in failure {fault.status}")
            return
        if fault is not None and fault.kind == "malformed":
            self._send(200, raw=b'{"choices": [{"message": {"content": "trunc', ctype="application/json")
            return
        messages = request.messages
        if path in CHAT_PATHS:
            calls, scripted = standin._tool_answer(body)
            if calls:
                self._send(200, _openai_tool_calls(model, calls))
                return
            if scripted is not None:
                self._send(200, _openai_completion(model, scripted, 1, len(scripted.split())))
                return
        text = "" if fault is not None and fault.kind == "empty" else standin._answer_for(messages)
        tokens_in, tokens_out = standin._usage_for(messages, text, request.system)
        if path == "gemini":
            self._send(200, _gemini_response(model, text, tokens_in, tokens_out))
        elif path == ANTHROPIC_PATH:
            self._send(200, _anthropic_message(model, text, tokens_in, tokens_out))
        elif path == OLLAMA_CHAT_PATH:
            payload = _ollama_message(model, text, tokens_in, tokens_out)
            if body.get("stream", True):
                self._send(200, raw=(json.dumps(payload) + "\n").encode(), ctype="application/x-ndjson")
            else:
                self._send(200, payload)
        else:
            self._send(200, _openai_completion(model, text, tokens_in, tokens_out))

    def _error(self, path: str, status: int, message: str) -> None:
        if path == ANTHROPIC_PATH:
            kinds = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}
            self._send(
                status,
                {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}},
            )
        elif path == OLLAMA_CHAT_PATH:
            self._send(status, {"error": message})
        else:
            self._send(status, {"error": {"message": message, "type": "standin_error", "code": status}})

    # --- model management ----------------------------------------------------------------
    def _openai_models(self, body: dict[str, Any]) -> None:
        keys = list(self.standin.lmstudio_models)
        self._send(
            200,
            {"object": "list", "data": [{"id": k, "object": "model", "owned_by": "standin"} for k in keys]},
        )

    def _lmstudio_v0_models(self, body: dict[str, Any]) -> None:
        data = [
            {
                "id": m.key,
                "object": "model",
                "type": "llm",
                "publisher": "standin",
                "state": "loaded" if m.instances else "not-loaded",
                "max_context_length": 32768,
            }
            for m in self.standin.lmstudio_models.values()
        ]
        self._send(200, {"object": "list", "data": data})

    def _lmstudio_v1_models(self, body: dict[str, Any]) -> None:
        models = [
            {
                "type": "llm",
                "publisher": "standin",
                "key": m.key,
                "display_name": m.key,
                "size_bytes": 1024,
                "loaded_instances": [{"id": i, "config": {"context_length": 4096}} for i in m.instances],
                "max_context_length": 32768,
                "format": "gguf",
            }
            for m in self.standin.lmstudio_models.values()
        ]
        self._send(200, {"models": models})

    def _lmstudio_load(self, body: dict[str, Any]) -> None:
        model = self.standin.lmstudio_models.get(str(body.get("model", "")))
        if model is None:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
            return
        instance = model.key if not model.instances else f"{model.key}:{len(model.instances) + 1}"
        model.instances.append(instance)
        self._send(
            200,
            {"model_instance_id": instance, "config": {"context_length": 4096}, "load_time_seconds": 0.01},
        )

    def _lmstudio_unload(self, body: dict[str, Any]) -> None:
        instance = str(body.get("instance_id", ""))
        for model in self.standin.lmstudio_models.values():
            if instance in model.instances:
                model.instances.remove(instance)
                self._send(200, {"instance_id": instance})
                return
        self._send(404, {"error": {"message": f"no loaded instance {instance!r}"}})

    def _ollama_tags(self, body: dict[str, Any]) -> None:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 2019393189,
                "digest": uuid.uuid5(uuid.NAMESPACE_URL, name).hex,
                "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"},
            }
            for name in self.standin.ollama_models
        ]
        self._send(200, {"models": models})

    def _ollama_pull(self, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        if ":" not in name:
            name = f"{name}:latest"
        pullable = self.standin.ollama_pullable
        if not name or (pullable is not None and name not in pullable):
            self._send(500, {"error": "pull model manifest: file does not exist"})
            return
        if name not in self.standin.ollama_models:
            self.standin.ollama_models.append(name)
        if body.get("stream", True):
            lines = [
                {"status": "pulling manifest"},
                {
                    "status": "pulling 6a0746a1ec1a",
                    "digest": "sha256:6a0746a1ec1a",
                    "total": 4000,
                    "completed": 0,
                },
                {
                    "status": "pulling 6a0746a1ec1a",
                    "digest": "sha256:6a0746a1ec1a",
                    "total": 4000,
                    "completed": 4000,
                },
                {"status": "verifying sha256 digest"},
                {"status": "success"},
            ]
            if self.standin.ollama_pull_error:  # Ollama reports some failures inside the stream
                lines = [lines[0], {"error": self.standin.ollama_pull_error}]
            self._send(
                200, raw="".join(json.dumps(x) + "\n" for x in lines).encode(), ctype="application/x-ndjson"
            )
        else:
            self._send(200, {"status": "success"})


def _openai_completion(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def _openai_tool_calls(model: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    tool_calls = [
        {
            "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": call["arguments"]
                if isinstance(call["arguments"], str)
                else json.dumps(call["arguments"]),
            },
        }
        for call in calls
    ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": tool_calls},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


_INTENTS = (
    ("cancel", re.compile(r"\b(cancel|cancelar|anular)", re.I)),
    ("change", re.compile(r"\b(cambiar|change|mover|move|reschedule)", re.I)),
    ("book", re.compile(r"\b(cita|reserva|reservar|book|appointment|hueco)", re.I)),
)


_TOMORROW = re.compile(r"\b(mañana|tomorrow)\b", re.I)


def _tool_results(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(tool name, parsed result) of the tool messages after the last user message, in order."""
    names: dict[str, str] = {}
    results: list[tuple[str, dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "user":
            results = []
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name", "")
        if message.get("role") == "tool":
            try:
                result = json.loads(message.get("content") or "{}")
            except ValueError:
                result = {}
            results.append((names.get(message.get("tool_call_id", ""), ""), result))
    return results


def _last_tool_text(messages: list[dict[str, Any]]) -> str:
    results = _tool_results(messages)
    if not results:
        return "¿En qué puedo ayudarte?"
    result = results[-1][1]
    return str(result.get("confirmation") or result.get("message") or result.get("error") or "")


def booking_step(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """The booking agent's next move: tool calls, or the text that ends the turn."""
    question = next(
        (_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    intent = next((name for name, pattern in _INTENTS if pattern.search(question)), None)
    if intent is None:
        return [], None
    done = _tool_results(messages)
    last_name, last = done[-1] if done else ("", {})
    if done and not last.get("ok"):
        return [], _last_tool_text(messages)
    if intent == "book":
        if not done:
            return [{"name": "find_slots", "arguments": {}}], None
        if last_name == "find_slots" and last.get("slots"):
            start = last["slots"][0]["start"]
            return [{"name": "book", "arguments": {"service_id": last["service_id"], "start": start}}], None
        return [], _last_tool_text(messages)
    if not done:
        return [{"name": "my_bookings", "arguments": {}}], None
    if last_name == "my_bookings":
        if not last.get("bookings"):
            return [], "No encuentro ninguna cita tuya."
        if intent == "cancel":
            return [{"name": "cancel", "arguments": {"booking_id": last["bookings"][0]["booking_id"]}}], None
        day = last["bookings"][0]["start"][:10]
        if _TOMORROW.search(question):
            offset = dt.datetime.fromisoformat(last["bookings"][0]["start"]).tzinfo
            day = (dt.datetime.now(offset) + dt.timedelta(days=1)).date().isoformat()
        return [{"name": "find_slots", "arguments": {"date": day}}], None
    if last_name == "find_slots" and intent == "change" and last.get("slots"):
        mine = next(r for n, r in done if n == "my_bookings")["bookings"][0]
        later = [s for s in last["slots"] if s["start"] != mine["start"]]
        if later:
            arguments = {"booking_id": mine["booking_id"], "start": later[0]["start"]}
            return [{"name": "reschedule", "arguments": arguments}], None
    return [], _last_tool_text(messages)


def _anthropic_message(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:12]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def _gemini_response(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}] if text else []},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": tokens_in,
            "candidatesTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
        },
        "modelVersion": model,
    }


def _ollama_message(model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": tokens_in,
        "eval_count": tokens_out,
    }
