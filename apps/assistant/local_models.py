"""Model management on local LLM servers: LM Studio's REST API and Ollama's. The only module that calls them.

LM Studio 0.4+ (REST API v1): `GET /api/v1/models` (each model with its `loaded_instances`),
`POST /api/v1/models/load {"model"}`, `POST /api/v1/models/unload {"instance_id"}`. Older servers
(0.3.x) only list models, at `GET /api/v0/models` (`state`: "loaded" / "not-loaded").
Ollama: `GET /api/tags`, `POST /api/pull {"model", "stream": true}` (NDJSON progress, read by a worker).

Where: the workspace's ProviderConfig base URL, else LMSTUDIO_BASE_URL / OLLAMA_BASE_URL, always through
the egress rules (chatbot/egress.py). LM Studio's API token, when one is required, is the lmstudio
ProviderConfig's key.

These servers are the workspace's to choose, so one that never answers must not hold the web tier: a web
request's calls get LOCAL_MODEL_WEB_TIMEOUT in all, and at most LOCAL_MODEL_WEB_CONCURRENCY of them per
workspace at once (429 beyond). Loading and pulling take minutes: a worker on the `local_models` queue
does them (never the queues of customer messages), at most LOCAL_MODEL_MAX_JOBS per workspace.
Errors are classified (unreachable, timeout, HTTP status, invalid answer); a server's own words are
never passed on, so a URL cannot be used to read another server through us.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.assistant.models import ModelPull, Provider, ProviderConfig
from chatbot import egress
from chatbot.exceptions import DomainError, NotFound, TooManyRequests, TransientError, ValidationFailed

CONNECT_TIMEOUT = 2.0
LOAD_TIMEOUT = 300.0  # a model of several GB takes a while to load into memory (in a worker)
PULL_TIMEOUT = 1800.0  # downloading one takes longer still
PULL_STALE = 600.0  # a job whose row has not moved for this long is presumed dead
MAX_ANSWER_BYTES = 2 * 1024 * 1024  # a model list is a few KB; more is not an answer we want
RUNNING = (ModelPull.Status.QUEUED, ModelPull.Status.PULLING, ModelPull.Status.LOADING)


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
    return egress.client()  # thread-safe; one connection pool for the process


def web_deadline() -> float:
    return time.monotonic() + float(settings.LOCAL_MODEL_WEB_TIMEOUT)


@contextmanager
def web_slot(workspace_id: int) -> Iterator[float]:
    """One of the workspace's few slots for calling its model server from a web request; yields the
    deadline. A slot is a cache key (Redis: shared by every web process), expiring on its own if a
    process dies holding it."""
    budget = settings.LOCAL_MODEL_WEB_TIMEOUT
    for slot in range(settings.LOCAL_MODEL_WEB_CONCURRENCY):
        key = f"local_models:web:{workspace_id}:{slot}"
        if cache.add(key, 1, timeout=math.ceil(budget * 2 + CONNECT_TIMEOUT)):
            try:
                yield web_deadline()
            finally:
                cache.delete(key)
            return
    raise TooManyRequests(
        "Calls to this workspace's model server are already under way; try again in a few seconds.",
        code="local_model_busy",
        retry_after=math.ceil(budget),
    )


class _Deadline(Exception):
    pass


@dataclass(frozen=True)
class _Server:
    name: str  # "LM Studio" / "Ollama", for messages
    code: str  # error code prefix
    base_url: str
    token: str = field(default="", repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def timeout(self, deadline: float) -> httpx.Timeout:
        left = max(deadline - time.monotonic(), 0.05)
        return httpx.Timeout(left, connect=min(CONNECT_TIMEOUT, left))

    def request(self, method: str, path: str, *, deadline: float, body: Any = None) -> Any:
        """One call, over by `deadline` (time.monotonic()) however slowly the server answers."""
        egress.check_url(self.base_url)  # EgressRefused (400 url_not_allowed); the connection is checked too
        try:
            with (
                egress.deadline(deadline),
                _http().stream(
                    method,
                    self.base_url + path,
                    json=body,
                    headers=self.headers,
                    timeout=self.timeout(deadline),
                ) as response,
            ):
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise self.invalid()
                    if time.monotonic() > deadline:
                        raise _Deadline
        except (httpx.TimeoutException, _Deadline):
            raise TransientError(
                f"{self.name} at {self.base_url} did not answer in time.", code=f"{self.code}_timeout"
            ) from None
        except httpx.HTTPError:
            raise self.unreachable() from None
        return self.payload(response.status_code, bytes(raw), path)

    def unreachable(self) -> TransientError:
        return TransientError(
            f"{self.name} is not reachable at {self.base_url}. Is it running, with its server started?",
            code=f"{self.code}_unreachable",
        )

    def invalid(self) -> TransientError:
        return TransientError(
            f"{self.name} at {self.base_url} sent an answer that is not what its API returns.",
            code=f"{self.code}_invalid_response",
        )

    def payload(self, status: int, raw: bytes, path: str) -> Any:
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        if 200 <= status < 300:
            if not isinstance(payload, dict):
                raise self.invalid()
            return payload
        raise self.status_error(status, path)

    def status_error(self, status: int, path: str) -> DomainError:
        # The status only, never the body: the body is the server's, and could be anyone's page.
        if status == 404:
            return NotFound(f"{self.name} answered 404 for {path}.", code=f"{self.code}_not_found")
        if 400 <= status < 500:
            return ValidationFailed(
                f"{self.name} refused the request (HTTP {status}).",
                code=f"{self.code}_http_{status}",
                details={"status": status},
            )
        return TransientError(
            f"{self.name} failed (HTTP {status}).",
            code=f"{self.code}_http_{status}",
            details={"status": status},
        )


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
def _v1_models(server: _Server, deadline: float) -> list[LocalModel]:
    payload = server.request("GET", "/api/v1/models", deadline=deadline)
    return [
        LocalModel(
            key=str(m.get("key", "")),
            display_name=str(m.get("display_name") or m.get("key", "")),
            type=str(m.get("type", "llm")),
            loaded=bool(m.get("loaded_instances")),
            instance_ids=[str(i.get("id", "")) for i in m.get("loaded_instances") or []],
        )
        for m in payload.get("models", [])
        if isinstance(m, dict)
    ]


def lmstudio_status(*, workspace_id: int) -> LMStudioStatus:
    """Whether LM Studio answers, and its models with their loaded state. Unreachable is an answer here."""
    server = _lmstudio(workspace_id)
    with web_slot(workspace_id) as deadline:
        try:
            try:
                return LMStudioStatus(True, server.base_url, "v1", _v1_models(server, deadline))
            except NotFound:  # LM Studio before 0.4: the v0 API only
                payload = server.request("GET", "/api/v0/models", deadline=deadline)
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
        if isinstance(m, dict)
    ]
    return LMStudioStatus(True, server.base_url, "v0", models)


def lmstudio_load_start(*, workspace_id: int, model: str) -> ModelPull:
    """Ask a worker to load `model` into LM Studio's memory (minutes for a large one); the row tells
    how it went. Refused at once when LM Studio is not reachable."""
    from apps.assistant.tasks import lmstudio_load as task

    server = _lmstudio(workspace_id)
    with web_slot(workspace_id) as deadline:
        server.request("GET", "/api/v1/models", deadline=deadline)  # reachable? (503 before queueing)
    return _job_start(workspace_id, ModelPull.Kind.LOAD, model, task.delay)


def lmstudio_load_run(*, job_id: int) -> str:
    """The worker's side of a load: one long call, its outcome on the row."""
    job = _job_claim(job_id, ModelPull.Status.LOADING)
    if job is None:
        return "skipped"
    server = _lmstudio(job.workspace_id)
    try:
        payload = server.request(
            "POST",
            "/api/v1/models/load",
            body={"model": job.model},
            deadline=time.monotonic() + LOAD_TIMEOUT,
        )
    except DomainError as exc:
        _job_ended(job, ModelPull.Status.ERROR, error=exc.message, code=exc.code)
        return "error"
    instance = str(payload.get("model_instance_id", job.model))[:120]
    seconds = float(payload.get("load_time_seconds") or 0.0)
    _job_ended(job, ModelPull.Status.SUCCESS, detail=f"loaded as {instance} in {seconds:g} s")
    return "success"


def lmstudio_unload(*, workspace_id: int, model: str) -> dict[str, Any]:
    """Unload every loaded instance of `model` (a model key, or one instance id). Nothing loaded: no-op."""
    server = _lmstudio(workspace_id)
    with web_slot(workspace_id) as deadline:
        instances = [
            instance
            for local in _v1_models(server, deadline)
            for instance in local.instance_ids
            if local.key == model or instance == model
        ]
        for instance in instances:
            server.request("POST", "/api/v1/models/unload", body={"instance_id": instance}, deadline=deadline)
    return {"model": model, "unloaded": instances}


# --- Ollama ---------------------------------------------------------------------------------------
def ollama_models(*, workspace_id: int) -> tuple[str, list[OllamaModel]]:
    server = _ollama(workspace_id)
    with web_slot(workspace_id) as deadline:
        payload = server.request("GET", "/api/tags", deadline=deadline)
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
        if isinstance(m, dict)
    ]
    return server.base_url, models


def ollama_pull_start(*, workspace_id: int, model: str) -> ModelPull:
    """Ask a worker to download `model` into Ollama (minutes for a large model); the row tells how
    far it got. Refused at once when Ollama is not reachable."""
    from apps.assistant.tasks import ollama_pull as task

    server = _ollama(workspace_id)
    with web_slot(workspace_id) as deadline:
        server.request("GET", "/api/tags", deadline=deadline)  # reachable? (503 otherwise, before queueing)
    return _job_start(workspace_id, ModelPull.Kind.PULL, model, task.delay)


_FRESH: dict[str, Any] = {
    "status": ModelPull.Status.QUEUED,
    "detail": "",
    "completed_bytes": 0,
    "total_bytes": 0,
    "error_code": "",
    "error": "",
}


def _job_start(workspace_id: int, kind: str, model: str, enqueue: Callable[[int], object]) -> ModelPull:
    """The row of a long operation, queued once: asking again while it runs changes nothing, and a
    workspace runs at most LOCAL_MODEL_MAX_JOBS at once (429 beyond)."""
    with transaction.atomic():
        # The workspace row is the lock: two requests cannot both see room for one more job.
        Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        fresh_since = timezone.now() - timedelta(seconds=PULL_STALE)
        job, created = ModelPull.objects.select_for_update().get_or_create(
            workspace_id=workspace_id, kind=kind, model=model
        )
        # A row silent this long lost its worker (or its task): start it again.
        if not created and job.status in RUNNING and job.updated_at >= fresh_since:
            return job  # already on its way: one operation per model
        running = (
            ModelPull.objects.filter(
                workspace_id=workspace_id, status__in=RUNNING, updated_at__gte=fresh_since
            )
            .exclude(pk=job.pk)
            .count()
        )
        if running >= settings.LOCAL_MODEL_MAX_JOBS:
            raise TooManyRequests(
                f"This workspace already has {running} model loads or downloads under way; "
                "try again when one has finished.",
                code="local_model_jobs_busy",
                retry_after=30,
            )
        for name, value in _FRESH.items():
            setattr(job, name, value)
        job.save()
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def _job_claim(job_id: int, status: str) -> ModelPull | None:
    job = ModelPull.objects.filter(pk=job_id).first()
    if job is None or job.status not in RUNNING:
        return None
    ModelPull.objects.filter(pk=job.pk).update(status=status, updated_at=timezone.now())
    return job


def ollama_pull_run(*, pull_id: int) -> str:
    """The worker's side: stream Ollama's progress lines into the row until it says success."""
    pull = _job_claim(pull_id, ModelPull.Status.PULLING)
    if pull is None:
        return "skipped"
    server = _ollama(pull.workspace_id)
    try:
        last = _stream_pull(server, pull)
    except DomainError as exc:
        _job_ended(pull, ModelPull.Status.ERROR, error=exc.message, code=exc.code or "ollama_failed")
        return "error"
    if last.get("error"):
        missing = "does not exist" in str(last["error"])
        _job_ended(
            pull,
            ModelPull.Status.ERROR,
            error=_NOT_IN_REGISTRY if missing else "Ollama reported an error during the download.",
            code="ollama_not_found" if missing else "ollama_refused",
        )
        return "error"
    _job_ended(pull, ModelPull.Status.SUCCESS, detail="success" if last.get("status") == "success" else "")
    return "success"


_NOT_IN_REGISTRY = "Ollama's registry has no such model (it does not exist)."


def _stream_pull(server: _Server, pull: ModelPull) -> dict[str, Any]:
    egress.check_url(server.base_url)
    # No overall limit: a large model takes as long as it takes. A silence of PULL_TIMEOUT is a failure.
    timeout = httpx.Timeout(PULL_TIMEOUT, connect=CONNECT_TIMEOUT)
    last: dict[str, Any] = {}
    saved_at = 0.0
    try:
        with _http().stream(
            "POST",
            server.base_url + "/api/pull",
            json={"model": pull.model, "stream": True},
            headers=server.headers,
            timeout=timeout,
        ) as response:
            if not response.is_success:
                # Ollama answers 500 for a name its registry does not know: classify, never repeat it.
                body = response.read()[:MAX_ANSWER_BYTES]
                if b"does not exist" in body:
                    raise NotFound(_NOT_IN_REGISTRY, code="ollama_not_found")
                raise server.status_error(response.status_code, "/api/pull")
            for line in response.iter_lines():
                if not line.strip():
                    continue
                last = json.loads(line)
                if not isinstance(last, dict):
                    raise ValueError
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
                        detail=_progress_line(last),
                        completed_bytes=pull.completed_bytes,
                        total_bytes=pull.total_bytes,
                        updated_at=timezone.now(),
                    )
    except httpx.TimeoutException:
        raise TransientError(
            f"Ollama at {server.base_url} went silent for {PULL_TIMEOUT:g} s.", code="ollama_timeout"
        ) from None
    except httpx.HTTPError:
        raise server.unreachable() from None
    except ValueError:
        raise server.invalid() from None
    return last


def _progress_line(line: dict[str, Any]) -> str:
    # Ollama's own words here, but only its progress vocabulary ("pulling 6a0746a1ec1a", "verifying
    # sha256 digest"), cut short: not a channel for another server's page.
    status = str(line.get("status", ""))
    return status[:80] if status.replace(" ", "").replace(":", "").isalnum() else ""


def _job_ended(job: ModelPull, status: str, *, detail: str = "", error: str = "", code: str = "") -> None:
    ModelPull.objects.filter(pk=job.pk).update(
        status=status,
        detail=detail[:200],
        completed_bytes=job.completed_bytes,
        total_bytes=job.total_bytes,
        error=error,
        error_code=code,
        updated_at=timezone.now(),
    )
