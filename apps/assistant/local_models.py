"""Model management on local LLM servers: LM Studio's REST API and Ollama's. The only module that calls them.

LM Studio 0.4+ (REST API v1): `GET /api/v1/models` (each model with its `loaded_instances`),
`POST /api/v1/models/load {"model"}`, `POST /api/v1/models/unload {"instance_id"}`. Older servers
(0.3.x) only list models, at `GET /api/v0/models` (`state`: "loaded" / "not-loaded").
Ollama: `GET /api/tags`, `POST /api/pull {"model", "stream": false}`.

Where: the workspace's ProviderConfig base URL, else LMSTUDIO_BASE_URL / OLLAMA_BASE_URL. LM Studio's
API token, when one is required, is the lmstudio ProviderConfig's key.
Unreachable or failing servers become TransientError (HTTP 503); a request the server refuses becomes
NotFound / ValidationFailed with the server's own message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings

from apps.assistant.models import Provider, ProviderConfig
from apps.assistant.providers import scrub
from chatbot.exceptions import DomainError, NotFound, TransientError, ValidationFailed

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 10.0
LOAD_TIMEOUT = 300.0  # a model of several GB takes a while to load into memory
PULL_TIMEOUT = 1800.0  # downloading one takes longer still


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


def ollama_pull(*, workspace_id: int, model: str) -> dict[str, str]:
    """Download `model` into Ollama; returns when Ollama says it is done (can take minutes)."""
    server = _ollama(workspace_id)
    try:
        payload = server.request(
            "POST", "/api/pull", body={"model": model, "stream": False}, read_timeout=PULL_TIMEOUT
        )
    except TransientError as exc:
        if "does not exist" in exc.message:  # Ollama answers 500 for a name its registry does not know
            raise NotFound(
                f"Ollama: no model named {model!r} in its registry.", code="ollama_not_found"
            ) from None
        raise
    if _error_text(payload):
        raise ValidationFailed(
            f"Ollama refused: {scrub(_error_text(payload), [server.token])}", code="ollama_refused"
        )
    return {"model": model, "status": str(payload.get("status", ""))}
