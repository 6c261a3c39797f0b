"""One reply to one customer turn: knowledge, cache, providers in fallback order, offline responder last.

Contract: `generate_reply` always returns a reply within the workspace's reply budget (plus the offline
responder's own, local, time, and any wait for a provider's rate slot) and writes exactly one ReplyUsage
row. Provider failures never escape; errors of the database or of the caller's data do, and so does
`admission.Deferred` when the first provider's bounds say "not now" (nothing called, nothing written).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache

from apps.assistant import (
    admission,
    booking_flow,
    knowledge,
    metrics,
    offline,
    prompt,
    providers,
    services,
    tools,
)
from apps.assistant.language import fold
from apps.assistant.models import AssistantSettings, BusinessProfile, Provider, ReplyUsage
from apps.assistant.providers import Completion, ProviderError, ProviderSpec
from apps.assistant.types import Passage, ReplyRequest, ReplyResult
from apps.calendar import chat

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_SECONDS = 20.0
MIN_CALL_SECONDS = 0.05  # less than this left of the budget is not worth a call
CACHE_PREFIX = "assistant:reply:"
# A provider that answered, even with "bad key" or "bad request", is up: the provider's breaker, shared
# by every workspace, must not open for all of them because one workspace's key (or refused URL) is wrong.
PROVIDER_IS_UP = frozenset({"auth_error", "bad_request", "url_not_allowed"})


@dataclass
class _Attempts:
    path: list[dict[str, Any]] = field(default_factory=list)
    budget_exhausted: bool = False
    queued: float = 0.0  # seconds spent waiting for rate slots: not counted against the reply budget

    def add(self, spec: ProviderSpec, outcome: str, latency: float = 0.0, error: str = "") -> None:
        self.path.append(
            {
                "provider": spec.name,
                "model": spec.model,
                "outcome": outcome,
                "latency_ms": round(latency * 1000),
                "error": error,
            }
        )


def generate_reply(request: ReplyRequest) -> ReplyResult:
    started = time.perf_counter()
    profile = services.profile_get_or_create(workspace_id=request.workspace_id)
    ai = services.assistant_settings_get_or_create(workspace_id=request.workspace_id)
    deadline = started + (ai.reply_budget_seconds or DEFAULT_BUDGET_SECONDS)
    specs = providers.provider_specs(workspace_id=request.workspace_id, fallback_order=ai.fallback_order)
    language = _reply_language(request, profile)

    now = prompt.local_now(profile)  # in the prompt; the cache keeps an answer within the hour
    customer = _booking_customer(request, language)
    flow = _booking_flow(request, customer, with_llm=bool(specs))
    if flow is not None:
        usage = _usage_record(request, started, provider=Provider.OFFLINE.value, error="booking flow")
        return ReplyResult(
            text=flow.text,
            handoff=flow.handoff,
            provider=Provider.OFFLINE.value,
            usage_id=usage.pk,
            interactive=flow.interactive,
        )
    if not specs:
        customer = None  # booking tools are for models
    # Only a question that does not depend on the conversation so far may be answered from the cache.
    key = (
        _cache_key(request, profile, specs, language, now, with_tools=customer is not None)
        if specs and not request.history
        else None
    )
    if key is not None:
        cached = _cache_get(key)
        metrics.REPLY_CACHE.inc("hit" if cached else "miss")
        if cached:
            usage = _usage_record(
                request, started, provider=cached["provider"], model=cached["model"], cache_hit=True
            )
            return ReplyResult(
                text=cached["text"],
                handoff=False,
                provider=cached["provider"],
                model=cached["model"],
                cache_hit=True,
                usage_id=usage.pk,
            )

    passages = knowledge.retrieve(
        workspace_id=request.workspace_id, query=request.question, version=profile.knowledge_version
    )
    messages = prompt.build_messages(
        profile=profile,
        passages=passages,
        history=request.history,
        question=request.question,
        # a cached answer is served to other customers: it must not carry this one's name
        customer_name="" if key is not None else request.customer_name,
        history_token_budget=ai.history_token_budget,
        language=language,
        now=now,
    )
    if customer is not None:
        messages[0]["content"] += "\n\n" + tools.PROMPT
    attempts = _Attempts()
    outcomes: list[tools.ToolOutcome] = []
    for spec in specs:
        answer = _converse(
            spec, messages, deadline, ai, attempts, workspace_id=request.workspace_id, customer=customer,
            outcomes=outcomes,
        )  # fmt: skip
        if answer is None:
            if any(o.acted for o in outcomes):
                break  # a booking changed: another model must not do it again; its result is said below
            continue
        text, handoff = prompt.split_handoff(answer.text)
        if not text and outcomes:  # the model stopped after its tools without a word
            text = tools.fallback_text(outcomes, language=language)
        # a tool that failed said "a person will confirm": then a person is asked for, whatever the model says
        handoff = handoff or any(o.result.get("handoff") for o in outcomes)
        if handoff and not text:  # the marker alone: say it in the customer's language
            text = offline.HANDOFF[language]
        if not text:
            text, handoff = offline.HANDOFF[language], True
        if key is not None and not handoff and not outcomes:  # tool results are this customer's own
            # whether a person is needed is never reused for others
            _cache_set(
                key, {"text": text, "provider": spec.name, "model": answer.model}, ai.cache_ttl_seconds
            )
        usage = _usage_record(
            request, started, provider=spec.name, model=answer.model, completion=answer, path=attempts.path
        )
        return ReplyResult(
            text=text, handoff=handoff, provider=spec.name, model=answer.model, usage_id=usage.pk
        )

    done = tools.fallback_text(outcomes, language=language) if any(o.acted for o in outcomes) else ""
    if done:  # a booking changed and no model could say so: its confirmation, as the tools wrote it
        usage = _usage_record(
            request, started, provider=attempts.path[-1]["provider"], path=attempts.path,
            error="no answer after the booking tools",
        )  # fmt: skip
        return ReplyResult(
            text=done, handoff=False, provider=str(attempts.path[-1]["provider"]), usage_id=usage.pk
        )
    text, handoff = offline.offline_reply(
        profile=profile,
        question=request.question,
        passages=passages,
        language=language,
        history=request.history,
        search=_searcher(request.workspace_id, profile.knowledge_version),
    )
    if not specs:
        error = "no LLM provider configured"
    elif attempts.budget_exhausted:
        error = "reply budget exhausted"
    else:
        error = "all LLM providers failed"
    usage = _usage_record(request, started, provider=Provider.OFFLINE.value, path=attempts.path, error=error)
    return ReplyResult(
        text=text,
        handoff=handoff,
        provider=Provider.OFFLINE.value,
        usage_id=usage.pk,
        providers_failed=bool(specs),
    )


# Said after a bot answer while the conversation waits for a person, so the customer knows both.
PENDING_NOTE = {
    "es": "Además, una persona del equipo te responderá en breve.",
    "en": "A person from the team will also reply to you soon.",
}


def confident_reply(request: ReplyRequest) -> ReplyResult | None:
    """The offline responder's answer when it has a sure one (no hand-off), else None (nothing written).

    For a conversation already waiting for a person: the bot still answers what its FAQ, the opening
    hours or small talk cover, and says a person is coming too; it neither asks an LLM nor hands off
    again, and stays silent on anything else (docs/decisions.md).
    """
    started = time.perf_counter()
    profile = services.profile_get_or_create(workspace_id=request.workspace_id)
    language = _reply_language(request, profile)
    passages = knowledge.retrieve(
        workspace_id=request.workspace_id, query=request.question, version=profile.knowledge_version
    )
    text, handoff = offline.offline_reply(
        profile=profile,
        question=request.question,
        passages=passages,
        language=language,
        history=request.history,
        search=_searcher(request.workspace_id, profile.knowledge_version),
    )
    if handoff:
        return None
    usage = _usage_record(request, started, provider=Provider.OFFLINE.value, error="waiting for a person")
    return ReplyResult(
        text=f"{text}\n\n{PENDING_NOTE[language]}",
        handoff=False,
        provider=Provider.OFFLINE.value,
        usage_id=usage.pk,
    )


def _reply_language(request: ReplyRequest, profile: BusinessProfile) -> str:
    """The one language of the reply, for every path (model, offline, waiting for a person): the
    caller's hint (the turn's detected language, else the contact's), else the question's, else the
    business's first (offline.reply_language)."""
    return offline.reply_language(profile=profile, question=request.question, language=request.language_hint)


def _booking_customer(request: ReplyRequest, language: str) -> chat.Customer | None:
    """Who books when the model calls a booking tool; None when booking tools are not offered (no
    contact, or no active service)."""
    if request.contact_id is None or not chat.available(workspace_id=request.workspace_id):
        return None
    return chat.Customer(
        workspace_id=request.workspace_id,
        contact_id=request.contact_id,
        name=request.customer_name,
        phone=request.customer_phone,
        language=language,
        turn_key=request.turn_key or request.question,
    )


def _booking_flow(
    request: ReplyRequest, customer: chat.Customer | None, *, with_llm: bool
) -> booking_flow.FlowReply | None:
    """The deterministic booking flow's answer: always to "cancel" / "change" right after a reminder
    and to a pick from its own list, and to a request for an appointment when no model is configured;
    None otherwise."""
    if customer is None:
        return None
    answer = booking_flow.reminder_reply(customer, request.question, lists=request.lists)
    if answer is not None:
        return answer
    if booking_flow.is_choice(request.choice):
        return booking_flow.choose(customer, request.choice)
    if not with_llm and request.lists and booking_flow.wants_booking(request.question):
        return booking_flow.start(customer)
    return None


def _converse(
    spec: ProviderSpec,
    messages: list[dict[str, Any]],
    deadline: float,
    ai: AssistantSettings,
    attempts: _Attempts,
    *,
    workspace_id: int,
    customer: chat.Customer | None,
    outcomes: list[tools.ToolOutcome],
) -> Completion | None:
    """One provider's answer; with booking tools, up to MAX_TOOL_ROUNDS rounds of tool calls, then
    one last turn that must answer in text. Every round is one call inside the same reply budget."""
    if customer is None:
        return _try(spec, messages, deadline, ai, attempts, workspace_id=workspace_id)
    talk = list(messages)
    tokens_in = tokens_out = 0
    cost = Decimal("0")
    for round_number in range(tools.MAX_TOOL_ROUNDS + 1):
        last = round_number == tools.MAX_TOOL_ROUNDS
        answer = _try(
            spec, talk, deadline, ai, attempts, workspace_id=workspace_id,
            tools=tools.SCHEMAS, tool_choice="none" if last else None,
        )  # fmt: skip
        if answer is None:
            return None
        tokens_in, tokens_out, cost = (
            tokens_in + answer.tokens_in, tokens_out + answer.tokens_out, cost + answer.cost_usd
        )  # fmt: skip
        if not answer.tool_calls or last:
            return replace(answer, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost, tool_calls=())
        talk.append(
            {
                "role": "assistant",
                "content": answer.text or None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in answer.tool_calls
                ],
            }
        )
        for number, (call_id, name, arguments) in enumerate(answer.tool_calls):
            call = tools.ToolCall(call_id, name, arguments)
            if number < tools.MAX_CALLS_PER_ROUND:
                outcome = tools.run(call, customer)
            else:
                outcome = tools.ToolOutcome(call, {"ok": False, "error": "Too many tool calls at once."})
            outcomes.append(outcome)
            talk.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": json.dumps(outcome.result, ensure_ascii=False),
                }
            )
    return None  # not reached: the last round always returns


def _searcher(workspace_id: int, version: int) -> offline.Search:
    def search(query: str) -> list[Passage]:
        return knowledge.retrieve(workspace_id=workspace_id, query=query, version=version)

    return search


def _try(
    spec: ProviderSpec,
    messages: list[dict[str, Any]],
    deadline: float,
    ai: AssistantSettings,
    attempts: _Attempts,
    *,
    workspace_id: int,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | None = None,
) -> Completion | None:
    remaining = deadline + attempts.queued - time.perf_counter()
    if remaining < MIN_CALL_SECONDS:
        attempts.budget_exhausted = True
        attempts.add(spec, "budget_exhausted")
        return None
    guard = spec.breaker
    if not guard.allow():
        attempts.add(spec, "circuit_open")
        return None
    try:
        with admission.admitted(
            provider=spec.name, quota_key=guard.name, workspace_id=workspace_id
        ) as waited:
            attempts.queued += waited
            return _call(
                spec, messages, min(ai.provider_timeout_seconds, remaining), ai, attempts,
                tools=tools, tool_choice=tool_choice,
            )  # fmt: skip
    except admission.Deferred as deferred:
        if not attempts.path:
            raise  # the first choice is only busy: wait for it rather than fall back
        attempts.add(spec, deferred.reason)
        return None


def _call(
    spec: ProviderSpec,
    messages: list[dict[str, Any]],
    timeout: float,
    ai: AssistantSettings,
    attempts: _Attempts,
    *,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | None = None,
) -> Completion | None:
    guard = spec.breaker
    # ~100 calls wait side by side in an llm worker: none of them may hold a database connection.
    admission.release_db_connection()
    called = time.perf_counter()
    try:
        answer = providers.complete(
            spec, messages, timeout=timeout, temperature=ai.temperature, max_tokens=ai.max_tokens,
            tools=tools, tool_choice=tool_choice,
        )  # fmt: skip
    except ProviderError as error:
        elapsed = time.perf_counter() - called
        metrics.PROVIDER_LATENCY.observe(spec.name, error.outcome, value=elapsed)
        providers.log_failure(error)
        attempts.add(spec, error.outcome, elapsed, error.message)
        if error.outcome in PROVIDER_IS_UP:
            guard.success()
        elif error.outcome == "timeout" and timeout < ai.provider_timeout_seconds:
            attempts.budget_exhausted = True  # cut short by our budget: not the provider's fault
        else:
            guard.failure()
        return None
    elapsed = time.perf_counter() - called
    guard.success()
    metrics.PROVIDER_LATENCY.observe(spec.name, "ok", value=elapsed)
    attempts.add(spec, "ok", elapsed)
    return answer


def normalize_question(question: str) -> str:
    """Case, accents, spacing and surrounding punctuation do not change what is asked."""
    return " ".join(fold(question).split()).strip(" ¿?¡!.,;:")


def _cache_key(
    request: ReplyRequest,
    profile: BusinessProfile,
    specs: list[ProviderSpec],
    language: str,
    now: datetime,
    *,
    with_tools: bool = False,
) -> str:
    material = json.dumps(
        [
            request.workspace_id,
            normalize_question(request.question),
            language,
            profile.knowledge_version,
            profile.version,
            [spec.cache_id for spec in specs],
            # "Are you open now?" has another answer in an hour, "¿abren hoy?" tomorrow.
            now.strftime("%Y-%m-%d %H"),
            with_tools,  # an answer given with booking tools offered is not one given without
        ]
    )
    return CACHE_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def _cache_get(key: str) -> dict[str, str] | None:
    try:
        value = cache.get(key)
    except Exception:  # the cache is an optimisation: an outage must not cost the reply
        logger.warning("reply cache unavailable (read)", exc_info=True)
        return None
    return value if isinstance(value, dict) and value.get("text") else None


def _cache_set(key: str, value: dict[str, str], ttl: int) -> None:
    if ttl <= 0:
        return
    try:
        cache.set(key, value, timeout=ttl)
    except Exception:
        logger.warning("reply cache unavailable (write)", exc_info=True)


def _usage_record(
    request: ReplyRequest,
    started: float,
    *,
    provider: str,
    model: str = "",
    completion: Completion | None = None,
    cache_hit: bool = False,
    path: list[dict[str, Any]] | None = None,
    error: str = "",
) -> ReplyUsage:
    return ReplyUsage.objects.create(
        workspace_id=request.workspace_id,
        conversation_id=request.conversation_id,
        turn_key=request.turn_key[:128],
        provider=provider,
        model=model,
        latency_ms=round((time.perf_counter() - started) * 1000),
        tokens_in=completion.tokens_in if completion else 0,
        tokens_out=completion.tokens_out if completion else 0,
        cost_usd=completion.cost_usd if completion else Decimal("0"),
        cache_hit=cache_hit,
        fallback_path=path or [],
        error=error,
    )
