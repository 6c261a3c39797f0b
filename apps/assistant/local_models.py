"""Model management on local LLM servers: LM Studio's REST API and Ollama's. The only module that calls them.

LM Studio 0.4+ (REST API v1): `GET /api/v1/models` (each model with its `loaded_instances`),
`POST /api/v1/models/load {"model"}`, `POST /api/v1/models/unload {"instance_id"}`. Older servers
(0.3.x) only list models, at `GET /api/v0/models` (`state`: "loaded" / "not-loaded").
Ollama: `GET /api/tags`, `POST /api/pull {"model", "stream": true}` (NDJSON progress, read by a worker).

Where: the workspace's ProviderConfig base URL, else LMSTUDIO_BASE_URL / OLLAMA_BASE_URL. LM Studio's
API token, when one is required, is the lmstudio ProviderConfig's key.
Unreachable or failing servers become TransientError (HTTP 503); a request the server refuses becomes
NotFound / ValidationFailed with the server's own message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.assistant.models import ModelPull, Provider, ProviderConfig
from apps.assistant.providers import scrub
from chatbot.exceptions import DomainError, NotFound, TransientError, ValidationFailed

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0
LOAD_TIMEOUT = 300.0  # a model of several GB takes a while to load into memory
PULL_TIMEOUT = 1800.0  # downloading one takes longer still
PULL_STALE = 600.0  # a pull whose row has not moved for this long is presumed dead


@dataclass(frozen=True)
class LocalModel:
    key: str
    display_name: str = ""
    type: str = "llm"
    loaded: bool = False
    instance_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LMStudioStatus:
    reachable: bool
    base_url: str
    api_version: str = ""  # "v1" (0.4+) or "v0"
    models: list[LocalModel] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class OllamaModel:
    name: str
    size: int = 0
    modified_at: str = ""
    digest: str = ""
    family: str = ""
    parameter_size: str = ""


@lru_cache(maxsize=1)
def _http() -> httpx.Client:
    return httpx.Client()  # thread-safe; one connection pool for the process


@dataclass(frozen=True)
class _Server:
    name: str  # "LM Studio" / "Ollama", for messages
    code: str  # error code prefix
    base_url: str
    token: str = field(default="", repr=False)

    def request(self, method: str, path: str, *, body: Any = None, read_timeout: float = READ_TIMEOUT) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
        try:
            response = _http().request(
                method, self.base_url + path, json=body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException:
            raise TransientError(
                f"{self.name} at {self.base_url} did not answer within {read_timeout:g} s.",
                code=f"{self.code}_timeout",
            ) from None
        except httpx.HTTPError:
            raise TransientError(
                f"{self.name} is not reachable at {self.base_url}. Is it running, with its server started?",
                code=f"{self.code}_unreachable",
            ) from None
        return self._payload(response, path)

    def _payload(self, response: httpx.Response, path: str) -> Any:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_success and payload is not None:
            return payload
        message = scrub(_error_text(payload) or response.text[:200], [self.token])
        status = response.status_code
        error: DomainError
        if status == 404:
            error = NotFound(f"{self.name}: {message or 'not found'} ({path})", code=f"{self.code}_not_found")
        elif 400 <= status < 500:
            error = ValidationFailed(f"{self.name} refused: {message}", code=f"{self.code}_refused")
        else:
            detail = f"HTTP {status}" if not response.is_success else "an answer that is not JSON"
            error = TransientError(f"{self.name} failed with {detail}: {message}", code=f"{self.code}_failed")
        raise error


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return str(error.get("message", ""))
        if error:
            return str(error)
    return ""


def _row(workspace_id: int, provider: str) -> ProviderConfig | None:
    return ProviderConfig.objects.filter(workspace_id=workspace_id, provider=provider).first()


def _lmstudio(workspace_id: int) -> _Server:
    row = _row(workspace_id, Provider.LMSTUDIO)
    base = ((row.base_url if row else "") or settings.LMSTUDIO_BASE_URL).rstrip("/").removesuffix("/v1")
    return _Server("LM Studio", "lmstudio", base, row.api_key if row else "")


def _ollama(workspace_id: int) -> _Server:
    row = _row(workspace_id, Provider.OLLAMA)
    base = ((row.base_url if row else "") or settings.OLLAMA_BASE_URL).rstrip("/")
    return _Server("Ollama", "ollama", base, row.api_key if row else "")


# --- LM Studio ------------------------------------------------------------------------------------
def _v1_models(server: _Server) -> list[LocalModel]:
    payload = server.request("GET", "/api/v1/models")
    return [
        LocalModel(
            key=str(m.get("key", "")),
            display_name=str(m.get("display_name") or m.get("key", "")),
            type=str(m.get("type", "llm")),
            loaded=bool(m.get("loaded_instances")),
            instance_ids=[str(i.get("id", "")) for i in m.get("loaded_instances") or []],
        )
        for m in payload.get("models", [])
    ]


def lmstudio_status(*, workspace_id: int) -> LMStudioStatus:
    """Whether LM Studio answers, and its models with their loaded state. Unreachable is an answer here."""
    server = _lmstudio(workspace_id)
    try:
        try:
            return LMStudioStatus(True, server.base_url, "v1", _v1_models(server))
        except NotFound:  # LM Studio before 0.4: the v0 API only
            payload = server.request("GET", "/api/v0/models")
    except TransientError as exc:
        return LMStudioStatus(False, server.base_url, error=exc.message)
    models = [
        LocalModel(
            key=str(m.get("id", "")),
            display_name=str(m.get("id", "")),
            type=str(m.get("type", "llm")),
            loaded=m.get("state") == "loaded",
            instance_ids=[str(m.get("id", ""))] if m.get("state") == "loaded" else [],
        )
        for m in payload.get("data", [])
    ]
    return LMStudioStatus(True, server.base_url, "v0", models)


def lmstudio_load(*, workspace_id: int, model: str) -> dict[str, Any]:
    server = _lmstudio(workspace_id)
    payload = server.request("POST", "/api/v1/models/load", body={"model": model}, read_timeout=LOAD_TIMEOUT)
    return {
        "model": model,
        "instance_id": str(payload.get("model_instance_id", model)),
        "load_time_seconds": float(payload.get("load_time_seconds") or 0.0),
    }


def lmstudio_unload(*, workspace_id: int, model: str) -> dict[str, Any]:
    """Unload every loaded instance of `model` (a model key, or one instance id). Nothing loaded: no-op."""
    server = _lmstudio(workspace_id)
    instances = [
        instance
        for local in _v1_models(server)
        for instance in local.instance_ids
        if local.key == model or instance == model
    ]
    for instance in instances:
        server.request("POST", "/api/v1/models/unload", body={"instance_id": instance})
    return {"model": model, "unloaded": instances}


# --- Ollama ---------------------------------------------------------------------------------------
def ollama_models(*, workspace_id: int) -> tuple[str, list[OllamaModel]]:
    server = _ollama(workspace_id)
    payload = server.request("GET", "/api/tags")
    models = [
        OllamaModel(
            name=str(m.get("name") or m.get("model", "")),
            size=int(m.get("size") or 0),
            modified_at=str(m.get("modified_at", "")),
            digest=str(m.get("digest", "")),
            family=str((m.get("details") or {}).get("family", "")),
            parameter_size=str((m.get("details") or {}).get("parameter_size", "")),
        )
        for m in payload.get("models", [])
    ]
    return server.base_url, models


def ollama_pull_start(*, workspace_id: int, model: str) -> ModelPull:
    """Ask a worker to download `model` into Ollama (minutes for a large model); the row tells how
    far it got. Refused at once when Ollama is not reachable."""
    from apps.assistant.tasks import ollama_pull as task

    _ollama(workspace_id).request("GET", "/api/tags")  # reachable? (503 otherwise, before queueing)
    with transaction.atomic():
        pull, created = ModelPull.objects.select_for_update().get_or_create(
            workspace_id=workspace_id, model=model
        )
        running = pull.status in (ModelPull.Status.QUEUED, ModelPull.Status.PULLING)
        # A row silent this long lost its worker (or its task): start it again.
        alive = pull.updated_at >= timezone.now() - timedelta(seconds=PULL_STALE)
        if not created and running and alive:
            return pull  # already on its way: one download per model
        for name, value in _FRESH.items():
            setattr(pull, name, value)
        pull.save()
        transaction.on_commit(lambda: task.delay(pull.pk))
    return pull


_FRESH: dict[str, Any] = {
    "status": ModelPull.Status.QUEUED,
    "detail": "",
    "completed_bytes": 0,
    "total_bytes": 0,
    "error_code": "",
    "error": "",
}


def ollama_pull_run(*, pull_id: int) -> str:
    """The worker's side: stream Ollama's progress lines into the row until it says success."""
    pull = ModelPull.objects.filter(pk=pull_id).first()
    if pull is None or pull.status not in (ModelPull.Status.QUEUED, ModelPull.Status.PULLING):
        return "skipped"
    server = _ollama(pull.workspace_id)
    ModelPull.objects.filter(pk=pull.pk).update(status=ModelPull.Status.PULLING)
    try:
        last = _stream_pull(server, pull)
    except DomainError as exc:
        code = exc.code or "ollama_failed"
        if "does not exist" in exc.message:  # Ollama answers 500 for a name its registry does not know
            code = "ollama_not_found"
        _pull_ended(pull, ModelPull.Status.ERROR, error=exc.message, code=code)
        return "error"
    if last.get("error"):
        message = scrub(str(last["error"]), [server.token])
        code = "ollama_not_found" if "does not exist" in message else "ollama_refused"
        _pull_ended(pull, ModelPull.Status.ERROR, error=f"Ollama: {message}", code=code)
        return "error"
    _pull_ended(pull, ModelPull.Status.SUCCESS, detail=str(last.get("status", "success")))
    return "success"


def _stream_pull(server: _Server, pull: ModelPull) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    # No overall limit: a large model takes as long as it takes. A silence of PULL_TIMEOUT is a failure.
    timeout = httpx.Timeout(PULL_TIMEOUT, connect=CONNECT_TIMEOUT)
    last: dict[str, Any] = {}
    saved_at = 0.0
    try:
        with _http().stream(
            "POST",
            server.base_url + "/api/pull",
            json={"model": pull.model, "stream": True},
            headers=headers,
            timeout=timeout,
        ) as response:
            if not response.is_success:
                response.read()
                server._payload(response, "/api/pull")  # raises the house error for its status
            for line in response.iter_lines():
                if not line.strip():
                    continue
                last = json.loads(line)
                if last.get("error"):
                    break
                if last.get("total"):
                    pull.completed_bytes, pull.total_bytes = (
                        int(last.get("completed") or 0),
                        int(last["total"]),
                    )
                if time.monotonic() - saved_at >= 1.0:  # progress at most once a second
                    saved_at = time.monotonic()
                    ModelPull.objects.filter(pk=pull.pk).update(
                        detail=str(last.get("status", ""))[:200],
                        completed_bytes=pull.completed_bytes,
                        total_bytes=pull.total_bytes,
                        updated_at=timezone.now(),
                    )
    except httpx.TimeoutException:
        raise TransientError(
            f"Ollama at {server.base_url} went silent for {PULL_TIMEOUT:g} s.", code="ollama_timeout"
        ) from None
    except httpx.HTTPError:
        raise TransientError(
            f"Ollama is not reachable at {server.base_url}.", code="ollama_unreachable"
        ) from None
    except ValueError:
        raise TransientError("Ollama sent a progress line that is not JSON.", code="ollama_failed") from None
    return last


def _pull_ended(pull: ModelPull, status: str, *, detail: str = "", error: str = "", code: str = "") -> None:
    ModelPull.objects.filter(pk=pull.pk).update(
        status=status,
        detail=detail[:200],
        completed_bytes=pull.completed_bytes,
        total_bytes=pull.total_bytes,
        error=error,
        error_code=code,
        updated_at=timezone.now(),
    )
