"""LLM providers, all through litellm: which ones a workspace uses, in which order, and one call to one.

litellm takes seconds to import, so it is imported on the first call (`_litellm()`), never when this
module is imported: the web process reads configurations and breaker states without paying for it.

Keys: a ProviderConfig row's key (encrypted at rest) wins over the environment's (`OPENAI_API_KEY`, ...).
Keys are never logged, never put into errors or API output; `ProviderSpec` keeps them out of its repr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from apps.assistant.models import AssistantSettings, Provider, ProviderConfig
from apps.assistant.services import assistant_settings_get_or_create
from apps.audit.services import audit_record
from chatbot import egress
from chatbot.circuit import Breaker, all_states, breaker
from chatbot.exceptions import TransientError, ValidationFailed

logger = logging.getLogger(__name__)

LLM_PROVIDERS: list[str] = [p.value for p in Provider if p != Provider.OFFLINE]
LOCAL_PROVIDERS = frozenset({Provider.OLLAMA.value, Provider.LMSTUDIO.value})
# Non-reasoning models by default: a reasoning model spends max_tokens thinking and can return nothing.
DEFAULT_MODELS: dict[str, str] = {
    Provider.GEMINI: "gemini-flash-lite-latest",
    Provider.OPENAI: "gpt-4.1-mini",
    Provider.ANTHROPIC: "claude-haiku-4-5",
    Provider.XAI: "grok-4.20-non-reasoning",
    Provider.OLLAMA: "llama3.2",
    Provider.LMSTUDIO: "qwen2.5-7b-instruct",
    Provider.OPENAI_COMPATIBLE: "gpt-4.1-mini",
}
ENV_KEYS: dict[str, str] = {
    Provider.GEMINI: "GEMINI_API_KEY",
    Provider.OPENAI: "OPENAI_API_KEY",
    Provider.ANTHROPIC: "ANTHROPIC_API_KEY",
    Provider.XAI: "XAI_API_KEY",
}
_LITELLM_PREFIX: dict[str, str] = {
    Provider.GEMINI: "gemini",
    Provider.OPENAI: "openai",
    Provider.ANTHROPIC: "anthropic",
    Provider.XAI: "xai",
    Provider.OLLAMA: "ollama_chat",
    Provider.LMSTUDIO: "lm_studio",
    Provider.OPENAI_COMPATIBLE: "openai",
}
# Explicit, so litellm never falls back to OPENAI_BASE_URL from the environment and sends the OpenAI
# key to the OpenAI-compatible server configured there.
OPENAI_API_BASE = "https://api.openai.com/v1"
# Each keyed provider's own public endpoint: the only place (with a URL the operator set in the
# environment) the environment's key is sent. A URL set by a workspace needs the workspace's own key.
PUBLIC_BASES: dict[str, str] = {
    Provider.GEMINI: "https://generativelanguage.googleapis.com",
    Provider.OPENAI: OPENAI_API_BASE,
    Provider.ANTHROPIC: "https://api.anthropic.com",
    Provider.XAI: "https://api.x.ai/v1",
}


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, resolved for one workspace: everything a call needs."""

    name: str
    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    # Set when the workspace chose the server (its own base URL): that server gets a breaker of its
    # own, so one tenant's dead or stalling URL never opens the provider's breaker for every tenant.
    own_server_of: int | None = field(default=None, compare=False)

    @property
    def breaker(self) -> Breaker:
        return provider_breaker(self.name, workspace_id=self.own_server_of)

    @property
    def litellm_model(self) -> str:
        return f"{_LITELLM_PREFIX[self.name]}/{self.model}"

    @property
    def local(self) -> bool:
        return self.name in LOCAL_PROVIDERS

    @property
    def cache_id(self) -> str:
        return f"{self.name}:{self.model}@{self.api_base or ''}"


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    # (id, name, JSON arguments) of each function the model called; the text may then be empty.
    tool_calls: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class ProviderState:
    """What the API shows about one provider (never the key itself)."""

    provider: str
    label: str
    configured: bool  # has a row
    enabled: bool
    model: str
    default_model: str
    base_url: str  # as set for this workspace ("" = default)
    effective_base_url: str  # where calls go ("" = the provider's public API)
    api_key_set: bool
    key_source: str  # "workspace" | "environment" | ""
    usable: bool
    reason: str  # why it is not usable
    circuit: str


class ProviderError(TransientError):
    """One provider call failed; the reply moves on to the next provider. The message holds no key."""

    code = "provider_failed"

    def __init__(
        self, message: str, *, provider: str, outcome: str, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.outcome = outcome  # timeout, rate_limited, server_error, connection_error, auth_error, ...
        self.status = status
        # The server's own words (keys scrubbed), for the operator's logs only: the message, which
        # reaches the API, is the classification alone, so a URL can never read a server through us.
        self.detail = detail


def breaker_name(name: str, *, workspace_id: int | None = None) -> str:
    """The provider's shared breaker, or the one of a server a workspace set for itself."""
    return f"llm:{name}" if workspace_id is None else f"llm:{name}:workspace-{workspace_id}"


def provider_breaker(name: str, *, workspace_id: int | None = None) -> Breaker:
    return breaker(
        breaker_name(name, workspace_id=workspace_id),
        failures=settings.LLM_BREAKER_FAILURES,
        cooldown=settings.LLM_BREAKER_COOLDOWN,
    )


# --- resolution ---------------------------------------------------------------------------------
def _default_bases() -> dict[str, str]:
    return {
        Provider.OPENAI_COMPATIBLE: settings.OPENAI_BASE_URL,
        Provider.LMSTUDIO: settings.LMSTUDIO_BASE_URL,
        Provider.OLLAMA: settings.OLLAMA_BASE_URL,
    }


def _env_key(name: str) -> str:
    setting = ENV_KEYS.get(name)
    return str(getattr(settings, setting, "") or "") if setting else ""


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", "", None


def _env_key_may_go_to(name: str, base: str) -> bool:
    """Whether the environment's key for `name` may be sent to `base` (a workspace's base URL).

    Only to the provider's own public endpoint or a URL the operator set in the environment: a
    workspace admin must not be able to point the platform's key at a server of theirs.
    """
    if not base:
        return True
    operator_bases = [PUBLIC_BASES.get(name, "")]
    if name == Provider.OPENAI:
        operator_bases.append(settings.OPENAI_BASE_URL)
    return any(b and _origin(b) == _origin(base) for b in operator_bases)


def _resolve(name: str, row: ProviderConfig | None) -> tuple[ProviderSpec | None, str]:
    """(spec, "") when `name` can be called for this workspace, else (None, why not)."""
    spec, reason = _resolve_endpoint(name, row)
    if spec is not None and row is not None and row.base_url.strip():
        spec = replace(spec, own_server_of=row.workspace_id)
    return spec, reason


def _resolve_endpoint(name: str, row: ProviderConfig | None) -> tuple[ProviderSpec | None, str]:
    if row is not None and not row.enabled:
        return None, _("disabled")
    model = (row.model if row else "") or DEFAULT_MODELS[name]
    row_base = (row.base_url if row else "").rstrip("/")
    row_key = row.api_key if row else ""
    if name in ENV_KEYS:
        env_key = _env_key(name) if _env_key_may_go_to(name, row_base) else ""
        key = row_key or env_key
        if not key and row_base and _env_key(name):
            return None, _("no API key for this base URL (a URL set here needs its own key)")
        if not key:
            return None, _("no API key (set it here or in %(variable)s)") % {"variable": ENV_KEYS[name]}
        base = row_base or (OPENAI_API_BASE if name == Provider.OPENAI else None)
        return ProviderSpec(name, model, base, key), ""
    if name == Provider.OPENAI_COMPATIBLE:
        base = row_base or settings.OPENAI_BASE_URL.rstrip("/")
        if not base:
            return None, _("no base URL (set it here or in %(variable)s)") % {"variable": "OPENAI_BASE_URL"}
        # The environment's key goes with the environment's URL only, never to a URL set here.
        key = row_key or ("" if row_base else settings.OPENAI_API_KEY) or "none"
        return ProviderSpec(name, model, base, key), ""
    if name == Provider.LMSTUDIO:
        base = (row_base or settings.LMSTUDIO_BASE_URL.rstrip("/")).removesuffix("/v1") + "/v1"
        return ProviderSpec(name, model, base, row_key or "lm-studio"), ""
    if name == Provider.OLLAMA:
        return ProviderSpec(
            name, model, row_base or settings.OLLAMA_BASE_URL.rstrip("/"), row_key or None
        ), ""
    return None, _("unknown provider")


def _clean_order(names: Iterable[str]) -> list[str]:
    """Known names, each once; "offline" is kept, so that ["offline"] can say "no LLM at all"."""
    seen: list[str] = []
    for name in names:
        name = str(name).strip().lower()
        if (name in LLM_PROVIDERS or name == Provider.OFFLINE) and name not in seen:
            seen.append(name)
    return seen


def _configured_order(rows: dict[str, ProviderConfig], fallback_order: Sequence[str]) -> list[str]:
    """The order asked for; else every provider with a row or a key/URL in the environment."""
    for source in (fallback_order, settings.AI_FALLBACK_ORDER):
        explicit = _clean_order(source)
        if explicit:
            return [name for name in explicit if name != Provider.OFFLINE]
    implicit = []
    for name in LLM_PROVIDERS:
        in_env = bool(_env_key(name)) or (
            name == Provider.OPENAI_COMPATIBLE and bool(settings.OPENAI_BASE_URL)
        )
        if name in rows or in_env:
            implicit.append(name)
    return implicit


def _rows(workspace_id: int) -> dict[str, ProviderConfig]:
    return {row.provider: row for row in ProviderConfig.objects.filter(workspace_id=workspace_id)}


def provider_specs(*, workspace_id: int, fallback_order: Sequence[str] = ()) -> list[ProviderSpec]:
    """The providers to try, in order (the offline responder, always last, is not among them)."""
    rows = _rows(workspace_id)
    specs = []
    for name in _configured_order(rows, fallback_order):
        spec, reason = _resolve(name, rows.get(name))
        if spec is None:
            logger.info("provider %s skipped for workspace %s: %s", name, workspace_id, reason)
        else:
            specs.append(spec)
    return specs


def effective_order(*, workspace_id: int, fallback_order: Sequence[str] = ()) -> list[str]:
    return [s.name for s in provider_specs(workspace_id=workspace_id, fallback_order=fallback_order)] + [
        Provider.OFFLINE.value
    ]


def provider_states(*, workspace_id: int) -> list[ProviderState]:
    rows = _rows(workspace_id)
    circuits = all_states()
    states = []
    for name in LLM_PROVIDERS:
        row = rows.get(name)
        spec, reason = _resolve(name, row)
        row_key = bool(row and row.api_key)
        env_key = bool(_env_key(name)) and _env_key_may_go_to(name, (row.base_url if row else ""))
        states.append(
            ProviderState(
                provider=name,
                label=str(Provider(name).label),
                configured=row is not None,
                enabled=row.enabled if row is not None else True,
                model=(row.model if row else "") or DEFAULT_MODELS[name],
                default_model=DEFAULT_MODELS[name],
                base_url=row.base_url if row else "",
                effective_base_url=(row.base_url if row else "") or _default_bases().get(name, ""),
                api_key_set=row_key or env_key,
                key_source="workspace" if row_key else ("environment" if env_key else ""),
                usable=spec is not None,
                reason=reason,
                circuit=circuits.get(spec.breaker.name if spec else breaker_name(name), "closed"),
            )
        )
    return states


def providers_overview(*, workspace_id: int) -> dict[str, Any]:
    """Each provider's configuration and breaker, and the order replies use now. Writes nothing."""
    saved = AssistantSettings.objects.filter(workspace_id=workspace_id).values_list(
        "fallback_order", flat=True
    )
    configured_order = list(saved.first() or [])
    return {
        "fallback_order": effective_order(workspace_id=workspace_id, fallback_order=configured_order),
        "configured_order": configured_order,
        "providers": provider_states(workspace_id=workspace_id),
    }


def providers_audit_details(
    *, fallback_order: Sequence[str] | None, providers: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What an audit entry says about a providers change: which providers and fields, never their
    values (they include API keys)."""
    return {"fallback_order": fallback_order, "providers": {p["provider"]: sorted(p) for p in providers}}


@transaction.atomic
def providers_configure(
    *,
    workspace_id: int,
    actor_id: int | None,
    fallback_order: Sequence[str] | None = None,
    providers: Sequence[dict[str, Any]] = (),
) -> None:
    """Update the fallback order and any provider's enabled/model/base_url/api_key.

    A key left out stays as it is; an empty key removes the stored one (the environment's applies again).
    """
    if fallback_order is not None:
        unknown = [n for n in fallback_order if n not in LLM_PROVIDERS and n != Provider.OFFLINE]
        if unknown:
            raise ValidationFailed(
                _("unknown providers in the fallback order: %(names)s")
                % {"names": ", ".join(map(str, unknown))}
            )
        assistant_settings = assistant_settings_get_or_create(workspace_id=workspace_id)
        AssistantSettings.objects.filter(pk=assistant_settings.pk).update(
            fallback_order=_clean_order(fallback_order)
        )
    for change in providers:
        if change.get("base_url"):
            egress.check_url(change["base_url"])  # raises EgressRefused: url_not_allowed
    for change in providers:
        name = change["provider"]
        if name not in LLM_PROVIDERS:
            raise ValidationFailed(_("unknown provider: %(name)s") % {"name": name})
        row, _created = ProviderConfig.objects.select_for_update().get_or_create(
            workspace_id=workspace_id, provider=name
        )
        fields = [f for f in ("enabled", "model", "base_url", "api_key") if f in change]
        for field_name in fields:
            setattr(row, field_name, change[field_name])
        if fields:
            row.save(update_fields=fields)
    audit_record(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action="providers.update",
        target=("assistant.providerconfig", workspace_id),
        details=providers_audit_details(fallback_order=fallback_order, providers=providers),
    )


# --- one call -------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-list download on import
    import litellm

    litellm.suppress_debug_info = True
    # Every connection litellm opens (the OpenAI SDK's client and litellm's own) obeys the egress
    # rules, checked on the address actually connected to.
    litellm.sync_transport = egress.GuardedTransport()
    litellm.client_session = egress.client()
    litellm.drop_params = (
        True  # a parameter a model does not take (temperature on some) is dropped, not fatal
    )
    if "LITELLM_LOG" not in os.environ:
        # one INFO line per call from litellm is noise next to our own logs
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)
    return litellm


def warm_up() -> None:
    """Import litellm now (seconds), e.g. when a worker process starts, not during its first reply."""
    _litellm()


_KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|xai-[A-Za-z0-9]{8,})")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("***", text)


_CONNECTION_HINT = re.compile(r"connection (error|refused|reset)|errno 111|name or service not known", re.I)
_JSON_HINT = re.compile(r"json|expecting value|unterminated string", re.I)


def _classify(exc: Exception, spec: ProviderSpec) -> ProviderError:
    litellm = _litellm()
    raw_status = getattr(exc, "status_code", None)
    status = raw_status if isinstance(raw_status, int) else None
    text = str(exc)
    # litellm's classes differ by provider for the same failure (a 403 can be a bare APIError): status first
    if isinstance(exc, litellm.Timeout):
        outcome = "timeout"
    elif status in (401, 403) or isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        outcome = "auth_error"
    elif status == 429 or isinstance(exc, litellm.RateLimitError):
        outcome = "rate_limited"
    elif status is not None and 400 <= status < 500:
        outcome = "bad_request"
    elif _CONNECTION_HINT.search(text):
        outcome = "connection_error"
    elif _JSON_HINT.search(text):
        outcome = "malformed"
    elif isinstance(exc, litellm.APIConnectionError):
        outcome = "connection_error"
    elif status is not None and status >= 500:
        outcome = "server_error"
    else:
        outcome = "error"
    detail = scrub(f"{type(exc).__name__}: {text}", [spec.api_key])
    if len(detail) > 300:
        detail = detail[:297] + "..."
    message = f"{outcome} (HTTP {status})" if status is not None else outcome
    return ProviderError(message, provider=spec.name, outcome=outcome, status=status, detail=detail)


def _cost(spec: ProviderSpec, response: Any) -> Decimal:
    """From litellm's price table; 0 for local models and for models the table does not know."""
    if spec.local:
        return Decimal("0")
    # litellm prices every response it returns: asking again would cost a second lookup per reply
    cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    try:
        return Decimal(str(cost or 0)).quantize(Decimal("0.00000001"))
    except ArithmeticError:
        return Decimal("0")


def _egress_refused(exc: BaseException) -> bool:
    """Whether the transport refused the connection (litellm wraps the error, a few levels deep)."""
    seen: BaseException | None = exc
    for _depth in range(10):
        if seen is None:
            return False
        if isinstance(seen, egress.EgressRefused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def complete(
    spec: ProviderSpec,
    messages: list[dict[str, Any]],
    *,
    timeout: float,
    temperature: float,
    max_tokens: int,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | None = None,
) -> Completion:
    """One call to one provider, no retries (the fallback order is the retry). Raises ProviderError.

    With `tools` (OpenAI function schemas) the answer may be tool calls instead of text."""
    litellm = _litellm()
    kwargs: dict[str, Any] = {
        "model": spec.litellm_model,
        "messages": messages,
        "timeout": timeout,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "max_retries": 0,
        "num_retries": 0,
    }
    if tools:
        kwargs["tools"] = tools
        if tool_choice:
            kwargs["tool_choice"] = tool_choice
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    try:
        if spec.api_base and spec.api_base not in PUBLIC_BASES.values():
            egress.check_url(spec.api_base)  # before the call; the transport checks the connection too
        response = litellm.completion(**kwargs)
    except egress.EgressRefused as exc:
        raise ProviderError(exc.message, provider=spec.name, outcome="url_not_allowed") from None
    except Exception as exc:  # every failure of this provider moves the reply on to the next one
        if _egress_refused(exc):
            raise ProviderError(
                "the connection led to a refused address", provider=spec.name, outcome="url_not_allowed"
            ) from None
        raise _classify(exc, spec) from None  # not chained: the original may carry request details
    try:
        text = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        text = None
    calls = _tool_calls(response) if tools else ()
    if not calls and (not isinstance(text, str) or not text.strip()):
        raise ProviderError("the answer was empty or not text", provider=spec.name, outcome="malformed")
    usage = getattr(response, "usage", None)
    return Completion(
        tool_calls=calls,
        text=text.strip() if isinstance(text, str) else "",
        model=spec.model,
        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=_cost(spec, response),
    )


# --- a test call, asked for from the providers page -------------------------------------------------
PROBE_TIMEOUT = 10.0  # seconds at most, whatever the workspace's own limit per provider
PROBE_MESSAGES = [{"role": "user", "content": "This is a connection test. Reply with the word OK."}]


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    model: str
    text: str
    milliseconds: int


def provider_probe(*, workspace_id: int, name: str) -> ProbeResult:
    """One short call to one provider through `complete`, as a reply makes it (same key, URL, model and
    egress rules), to check its configuration. Raises ValidationFailed when it cannot be called at all,
    ProviderError when the call fails.

    The breaker is neither asked nor fed: a person's test must not open it for every reply, and an
    open breaker must not stop the person from checking that the provider is back.
    """
    if name not in LLM_PROVIDERS:
        raise ValidationFailed(_("unknown provider: %(name)s") % {"name": name})
    spec, reason = _resolve(name, _rows(workspace_id).get(name))
    if spec is None:
        raise ValidationFailed(reason, code="provider_not_usable")
    limits = assistant_settings_get_or_create(workspace_id=workspace_id)
    started = time.monotonic()
    answer = complete(
        spec,
        PROBE_MESSAGES,
        timeout=min(PROBE_TIMEOUT, float(limits.provider_timeout_seconds)),
        temperature=0.0,
        max_tokens=16,
    )
    return ProbeResult(
        provider=name,
        model=spec.model,
        text=answer.text[:200],
        milliseconds=round((time.monotonic() - started) * 1000),
    )


def _tool_calls(response: Any) -> tuple[tuple[str, str, str], ...]:
    """(id, name, arguments) of the answer's function calls; malformed entries are left out."""
    try:
        raw = response.choices[0].message.tool_calls or []
    except (AttributeError, IndexError, TypeError):
        return ()
    calls = []
    for number, call in enumerate(raw):
        function = getattr(call, "function", None)
        name = getattr(function, "name", None)
        arguments = getattr(function, "arguments", None)
        if not isinstance(name, str) or not name:
            continue
        call_id = getattr(call, "id", None)
        calls.append(
            (
                call_id if isinstance(call_id, str) and call_id else f"call_{number}",
                name,
                arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
            )
        )
    return tuple(calls)


def log_failure(error: ProviderError) -> None:
    if error.outcome == "auth_error":
        logger.error(
            "LLM provider %s rejected our credentials (HTTP %s): check its API key. %s",
            error.provider,
            error.status,
            error.detail or error.message,
        )
    else:
        logger.warning(
            "LLM provider %s failed (%s): %s", error.provider, error.outcome, error.detail or error.message
        )
