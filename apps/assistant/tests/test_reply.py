"""generate_reply against the LLM stand-in over real HTTP, through litellm (the production path)."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import providers
from apps.assistant.models import BusinessProfile, ReplyUsage
from apps.assistant.reply import generate_reply, normalize_question
from apps.assistant.types import ReplyRequest, Turn

pytestmark = pytest.mark.django_db

COMPAT, STUDIO, OLLAMA = "openai_compatible", "lmstudio", "ollama"
SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def fast_breakers(settings):
    settings.LLM_BREAKER_COOLDOWN = 30  # time passes on the shared clock (`shared_clock`), not by waiting


def ask(workspace, question="¿A qué hora abren?", history=(), **extra):
    return generate_reply(
        ReplyRequest(workspace_id=workspace.pk, question=question, history=list(history), **extra)
    )


def path_of(usage):
    """fallback_path without the timings, which vary."""
    return [{k: v for k, v in step.items() if k != "latency_ms"} for step in usage.fallback_path]


def models_called(standin):
    return [r.model for r in standin.chat_requests()]


HISTORY = [Turn("customer", "hola"), Turn("assistant", "¡Hola! ¿En qué te ayudo?")]


def test_the_first_provider_answers_and_the_usage_row_holds_exact_figures(
    workspace, llm_standin, standin_providers
):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.usage = (42, 7)

    result = ask(workspace, conversation_id=77, turn_key="wamid.1")

    usage = ReplyUsage.objects.get()
    assert (
        result.text,
        result.handoff,
        result.provider,
        result.model,
        result.cache_hit,
        result.usage_id,
    ) == (
        "Hola, soy el asistente virtual.",
        False,
        COMPAT,
        f"{COMPAT}-model",
        False,
        usage.pk,
    )
    assert (usage.workspace_id, usage.conversation_id, usage.turn_key) == (workspace.pk, 77, "wamid.1")
    assert (usage.provider, usage.model, usage.tokens_in, usage.tokens_out) == (
        COMPAT,
        f"{COMPAT}-model",
        42,
        7,
    )
    assert (usage.cost_usd, usage.cache_hit, usage.error) == (Decimal("0"), False, "")
    assert path_of(usage) == [{"provider": COMPAT, "model": f"{COMPAT}-model", "outcome": "ok", "error": ""}]
    assert 0 <= usage.fallback_path[0]["latency_ms"] <= usage.latency_ms
    assert models_called(llm_standin) == [f"{COMPAT}-model"]  # the second provider was never called


def test_the_prompt_sent_carries_the_question(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])
    llm_standin.echo()

    result = ask(workspace, question="¿Tienen envío a domicilio?")

    (request,) = llm_standin.chat_requests()
    assert request.texts[-1] == ("user", "¿Tienen envío a domicilio?")
    assert request.texts[0][0] == "system"
    assert result.text == "¿Tienen envío a domicilio?"


def test_fallback_order_is_respected_when_the_first_provider_fails(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [STUDIO, COMPAT, OLLAMA])
    llm_standin.fail_next(1, status=500, model=f"{STUDIO}-model")

    result = ask(workspace)

    usage = ReplyUsage.objects.get()
    assert models_called(llm_standin) == [f"{STUDIO}-model", f"{COMPAT}-model"]
    assert (result.provider, usage.provider, usage.error) == (COMPAT, COMPAT, "")
    assert [(s["provider"], s["outcome"]) for s in usage.fallback_path] == [
        (STUDIO, "server_error"),
        (COMPAT, "ok"),
    ]
    assert "500" in usage.fallback_path[0]["error"]


def test_429_timeouts_malformed_and_empty_answers_all_fall_through(workspace, llm_standin, standin_providers):
    order = ["openai_compatible", "xai", "openai", "lmstudio", "ollama"]
    standin_providers(workspace.pk, order, provider_timeout_seconds=0.3)
    llm_standin.fail_next(1, status=429, model="openai_compatible-model")
    llm_standin.stall(2, model="xai-model")
    llm_standin.malformed_next(model="openai-model")
    llm_standin.empty_next(model="lmstudio-model")

    result = ask(workspace, history=HISTORY)

    usage = ReplyUsage.objects.get()
    assert result.provider == "ollama"
    assert [(s["provider"], s["outcome"]) for s in usage.fallback_path] == [
        ("openai_compatible", "rate_limited"),
        ("xai", "timeout"),
        ("openai", "malformed"),
        ("lmstudio", "malformed"),
        ("ollama", "ok"),
    ]
    assert models_called(llm_standin) == [f"{name}-model" for name in order]


def test_breaker_opens_after_three_failures_then_the_provider_is_skipped_without_a_call(
    workspace, llm_standin, standin_providers
):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.fail_next(3, status=503, model=f"{COMPAT}-model")
    for _ in range(3):
        ask(workspace, history=HISTORY)
    llm_standin.clear_requests()

    result = ask(workspace, history=HISTORY)

    usage = ReplyUsage.objects.latest("pk")
    assert providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "open"
    assert models_called(llm_standin) == [f"{STUDIO}-model"]
    assert result.provider == STUDIO
    assert path_of(usage)[0] == {
        "provider": COMPAT,
        "model": f"{COMPAT}-model",
        "outcome": "circuit_open",
        "error": "",
    }
    assert usage.fallback_path[0]["latency_ms"] == 0


def test_one_workspaces_failing_server_does_not_open_the_breaker_for_other_workspaces(
    llm_standin, standin_providers, settings
):
    """A tenant that points openai_compatible at a dead or stalling server of its own trips only its
    own breaker: another tenant on the same provider kind keeps being answered by its server."""
    settings.LLM_BREAKER_FAILURES = 1
    attacker, neighbour = WorkspaceFactory(), WorkspaceFactory()
    standin_providers(attacker.pk, [COMPAT])
    standin_providers(neighbour.pk, [COMPAT])
    llm_standin.fail_next(1, status=503, model=f"{COMPAT}-model")
    ask(attacker, history=HISTORY)
    llm_standin.clear_requests()

    result = ask(neighbour, history=HISTORY)

    assert providers.provider_breaker(COMPAT, workspace_id=attacker.pk).state() == "open"
    assert providers.provider_breaker(COMPAT, workspace_id=neighbour.pk).state() == "closed"
    assert providers.provider_breaker(COMPAT).state() == "closed"
    assert result.provider == COMPAT
    assert models_called(llm_standin) == [f"{COMPAT}-model"]


def test_the_breaker_threshold_is_a_setting(workspace, llm_standin, standin_providers, settings):
    settings.LLM_BREAKER_FAILURES = 1
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.fail_next(1, status=503, model=f"{COMPAT}-model")

    ask(workspace, history=HISTORY)

    assert providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "open"


def test_after_the_cooldown_one_trial_call_closes_the_breaker_on_success(
    workspace, llm_standin, standin_providers, shared_clock
):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.fail_next(3, status=500, model=f"{COMPAT}-model")
    for _ in range(3):
        ask(workspace, history=HISTORY)
    shared_clock.advance(30)  # the cool-down
    llm_standin.clear_requests()

    result = ask(workspace, history=HISTORY)

    assert models_called(llm_standin) == [f"{COMPAT}-model"]
    assert result.provider == COMPAT
    assert providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "closed"


def test_a_failed_trial_reopens_the_breaker(workspace, llm_standin, standin_providers, shared_clock):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.fail_next(4, status=500, model=f"{COMPAT}-model")
    for _ in range(3):
        ask(workspace, history=HISTORY)
    shared_clock.advance(30)  # the cool-down
    llm_standin.clear_requests()

    ask(workspace, history=HISTORY)
    ask(workspace, history=HISTORY)

    assert models_called(llm_standin) == [f"{COMPAT}-model", f"{STUDIO}-model", f"{STUDIO}-model"]
    assert providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "open"


def test_an_auth_error_moves_on_without_opening_the_shared_breaker_and_no_key_is_logged(
    workspace, llm_standin, standin_providers, caplog
):
    caplog.set_level(logging.DEBUG)
    standin_providers(workspace.pk, [COMPAT, STUDIO], api_keys={COMPAT: SECRET})
    body = {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}
    llm_standin.fail_next(3, status=401, model=f"{COMPAT}-model", body=body)

    results = [ask(workspace, history=HISTORY) for _ in range(3)]

    paths = [u.fallback_path for u in ReplyUsage.objects.order_by("pk")]
    assert [r.provider for r in results] == [STUDIO] * 3
    assert [p[0]["outcome"] for p in paths] == ["auth_error"] * 3
    assert providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "closed"
    assert "rejected our credentials" in caplog.text
    assert SECRET not in caplog.text
    assert all(SECRET not in str(p) for p in paths)
    assert (
        SECRET in llm_standin.chat_requests()[0].headers["authorization"]
    )  # it was sent, only to the provider


def test_a_stalling_provider_cannot_outlast_the_budget_and_the_offline_responder_hands_off(
    workspace, llm_standin, standin_providers
):
    standin_providers(workspace.pk, [COMPAT, STUDIO], reply_budget_seconds=0.6, provider_timeout_seconds=5)
    llm_standin.stall(3, model=f"{COMPAT}-model")

    result = ask(workspace, question="zxqv wlkj")

    # The stand-in answers after 3 s, within the provider's 5 s timeout: a "timeout" can only be the
    # budget's (0.6 s) cut, so no stopwatch is needed to prove it.
    usage = ReplyUsage.objects.get()
    assert (result.provider, result.handoff, result.cache_hit) == ("offline", True, False)
    assert result.text
    assert (usage.provider, usage.error) == ("offline", "reply budget exhausted")
    assert [(s["provider"], s["outcome"]) for s in usage.fallback_path] == [
        (COMPAT, "timeout"),
        (STUDIO, "budget_exhausted"),
    ]
    assert models_called(llm_standin) == [f"{COMPAT}-model"]
    assert (
        providers.provider_breaker(COMPAT, workspace_id=workspace.pk).state() == "closed"
    )  # cut short by our budget, not its fault


def test_every_provider_failing_ends_with_the_offline_responder(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    llm_standin.fail_next(2, status=500)

    result = ask(workspace, question="zxqv wlkj")

    usage = ReplyUsage.objects.get()
    assert (result.provider, result.handoff) == ("offline", True)
    assert (usage.provider, usage.model, usage.tokens_in, usage.error) == (
        "offline",
        "",
        0,
        "all LLM providers failed",
    )
    assert [s["outcome"] for s in usage.fallback_path] == ["server_error", "server_error"]


def test_with_nothing_configured_the_offline_responder_answers(settings, workspace, llm_breakers):
    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "XAI_API_KEY", "OPENAI_BASE_URL"):
        setattr(settings, name, "")
    settings.AI_FALLBACK_ORDER = []

    result = ask(workspace, question="zxqv wlkj")

    usage = ReplyUsage.objects.get()
    assert (result.provider, result.handoff) == ("offline", True)
    assert (usage.provider, usage.error, usage.fallback_path, usage.cache_hit) == (
        "offline",
        "no LLM provider configured",
        [],
        False,
    )


# --- reply cache ----------------------------------------------------------------------------------
def _cache_count(result):
    return REGISTRY.get_sample_value("chatbot_assistant_reply_cache_total", {"result": result}) or 0.0


def test_a_repeated_history_less_question_is_served_from_the_cache(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])
    hits, misses = _cache_count("hit"), _cache_count("miss")

    first = ask(workspace, question="¿A qué hora abren?")
    second = ask(workspace, question="  a QUE hora abren ")

    usages = list(ReplyUsage.objects.order_by("pk"))
    assert len(llm_standin.chat_requests()) == 1
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert (second.text, second.provider, second.model, second.usage_id) == (
        first.text,
        COMPAT,
        f"{COMPAT}-model",
        usages[1].pk,
    )
    assert [u.cache_hit for u in usages] == [False, True]
    assert (usages[1].tokens_in, usages[1].tokens_out, usages[1].cost_usd, usages[1].fallback_path) == (
        0,
        0,
        Decimal("0"),
        [],
    )
    assert (_cache_count("hit") - hits, _cache_count("miss") - misses) == (1.0, 1.0)


def test_a_question_with_history_is_never_cached(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])
    misses = _cache_count("miss")

    results = [ask(workspace, history=HISTORY) for _ in range(2)]

    assert len(llm_standin.chat_requests()) == 2
    assert [r.cache_hit for r in results] == [False, False]
    assert _cache_count("miss") == misses  # not even looked up


def test_a_knowledge_or_profile_change_misses_the_cache(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])
    ask(workspace)
    BusinessProfile.objects.filter(workspace=workspace).update(knowledge_version=2)
    ask(workspace)
    BusinessProfile.objects.filter(workspace=workspace).update(version=5)

    third = ask(workspace)

    assert len(llm_standin.chat_requests()) == 3
    assert third.cache_hit is False


def test_a_change_of_provider_order_misses_the_cache(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT, STUDIO])
    ask(workspace)
    standin_providers(workspace.pk, [STUDIO, COMPAT])

    result = ask(workspace)

    assert (result.cache_hit, result.provider) == (False, STUDIO)


def test_an_offline_answer_is_not_cached(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])
    llm_standin.fail_next(1, status=500)
    ask(workspace)

    second = ask(workspace)

    assert (second.cache_hit, second.provider) == (False, COMPAT)


def test_a_cacheable_prompt_does_not_carry_the_customer_name(workspace, llm_standin, standin_providers):
    standin_providers(workspace.pk, [COMPAT])

    ask(workspace, customer_name="Leocadia Fernández")

    (request,) = llm_standin.chat_requests()
    assert "Leocadia" not in str(request.texts)


def test_question_normalization():
    assert normalize_question("  ¿A QUÉ   hora abren?  ") == normalize_question("a que hora abren")
    assert normalize_question("¿Abren hoy?") != normalize_question("¿Abren mañana?")


def test_the_model_asking_for_a_person_hands_off_and_the_marker_is_never_sent(
    workspace, llm_standin, standin_providers
):
    standin_providers(workspace.pk, [COMPAT])
    llm_standin.answer = "Claro, una persona del equipo te responderá en breve.\n[HANDOFF]"

    first = ask(workspace, question="Quiero hablar con alguien de reclamaciones")
    second = ask(workspace, question="Quiero hablar con alguien de reclamaciones")

    assert (first.text, first.handoff, first.provider) == (
        "Claro, una persona del equipo te responderá en breve.",
        True,
        COMPAT,
    )
    assert (second.handoff, second.cache_hit) == (True, False)  # a hand-off is never served from the cache
    assert len(llm_standin.chat_requests()) == 2


@pytest.mark.parametrize(
    ("question", "word"),
    [("necesito hablar con un encargado", "persona"), ("I need a manager please", "person")],
)
def test_a_bare_marker_becomes_the_hand_off_message_in_the_customers_language(
    workspace, llm_standin, standin_providers, question, word
):
    standin_providers(workspace.pk, [COMPAT])
    llm_standin.answer = "[HANDOFF]"

    result = ask(workspace, question=question)

    assert result.handoff is True
    assert word in result.text and "HANDOFF" not in result.text


def test_the_cache_keeps_an_answer_within_the_hour_only(
    workspace, llm_standin, standin_providers, monkeypatch
):
    from datetime import UTC, datetime

    from apps.assistant import prompt

    standin_providers(workspace.pk, [COMPAT])
    clock = {"now": datetime(2026, 11, 26, 9, 10, tzinfo=UTC)}
    real = prompt.local_now
    monkeypatch.setattr(prompt, "local_now", lambda profile, now=None: real(profile, clock["now"]))

    first = ask(workspace, question="¿Estáis abiertos ahora?")
    clock["now"] = datetime(2026, 11, 26, 9, 55, tzinfo=UTC)
    same_hour = ask(workspace, question="¿Estáis abiertos ahora?")
    clock["now"] = datetime(2026, 11, 26, 10, 1, tzinfo=UTC)
    next_hour = ask(workspace, question="¿Estáis abiertos ahora?")

    assert (first.cache_hit, same_hour.cache_hit, next_hour.cache_hit) == (False, True, False)
    assert "10:01" in llm_standin.chat_requests()[-1].messages[0]["content"]
