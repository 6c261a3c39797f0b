"""Providers: resolution per workspace, one call through litellm to the stand-in, errors, keys, the API."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.assistant.models import AssistantSettings, ProviderConfig
from apps.assistant.providers import (
    OPENAI_API_BASE,
    ProviderError,
    ProviderSpec,
    complete,
    effective_order,
    provider_breaker,
    provider_specs,
)

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "system", "content": "Eres un asistente."}, {"role": "user", "content": "hola que tal"}]
SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_environment_keys(settings):
    settings.AI_FALLBACK_ORDER = []
    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "XAI_API_KEY", "OPENAI_BASE_URL"):
        setattr(settings, name, "")
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:11434"
    settings.LMSTUDIO_BASE_URL = "http://127.0.0.1:1234"


def _names(workspace, order=()):
    return [(s.name, s.model) for s in provider_specs(workspace_id=workspace.pk, fallback_order=order)]


# --- resolution -----------------------------------------------------------------------------------
def test_nothing_configured_means_the_offline_responder_alone(workspace):
    assert provider_specs(workspace_id=workspace.pk) == []
    assert effective_order(workspace_id=workspace.pk) == ["offline"]


def test_environment_keys_give_every_keyed_provider_in_canonical_order_with_default_models(
    settings, workspace
):
    settings.ANTHROPIC_API_KEY = "env-anthropic"
    settings.GEMINI_API_KEY = "env-gemini"

    specs = provider_specs(workspace_id=workspace.pk)

    assert [(s.name, s.model, s.api_key) for s in specs] == [
        ("gemini", "gemini-flash-lite-latest", "env-gemini"),
        ("anthropic", "claude-haiku-4-5", "env-anthropic"),
    ]
    assert [s.litellm_model for s in specs] == [
        "gemini/gemini-flash-lite-latest",
        "anthropic/claude-haiku-4-5",
    ]
    assert effective_order(workspace_id=workspace.pk) == ["gemini", "anthropic", "offline"]


def test_workspace_order_wins_over_the_setting_and_providers_without_key_are_skipped(settings, workspace):
    settings.AI_FALLBACK_ORDER = ["openai", "anthropic"]
    settings.OPENAI_API_KEY = "env-openai"
    settings.ANTHROPIC_API_KEY = "env-anthropic"

    from_setting = _names(workspace)
    from_workspace = _names(workspace, ["offline", "xai", "anthropic", "bogus", "openai", "anthropic"])

    assert from_setting == [("openai", "gpt-4.1-mini"), ("anthropic", "claude-haiku-4-5")]
    assert from_workspace == [("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4.1-mini")]  # xai: no key
    assert effective_order(workspace_id=workspace.pk, fallback_order=["offline", "openai"]) == [
        "openai",
        "offline",
    ]


def test_an_order_of_offline_alone_means_no_llm_even_with_keys(settings, workspace):
    settings.OPENAI_API_KEY = "env-openai"
    settings.AI_FALLBACK_ORDER = ["openai"]

    assert effective_order(workspace_id=workspace.pk, fallback_order=["offline"]) == ["offline"]
    assert effective_order(workspace_id=workspace.pk) == ["openai", "offline"]


def test_a_row_key_and_model_win_over_the_environment_and_a_disabled_row_is_skipped(settings, workspace):
    settings.OPENAI_API_KEY = "env-openai"
    settings.XAI_API_KEY = "env-xai"
    ProviderConfig.objects.create(workspace=workspace, provider="openai", model="gpt-x", api_key="row-openai")
    ProviderConfig.objects.create(workspace=workspace, provider="xai", enabled=False)

    (spec,) = provider_specs(workspace_id=workspace.pk)

    assert (spec.name, spec.model, spec.api_key, spec.api_base) == (
        "openai",
        "gpt-x",
        "row-openai",
        OPENAI_API_BASE,
    )


def test_local_providers_and_openai_compatible_resolve_their_base_urls(settings, workspace):
    settings.OPENAI_BASE_URL = "http://compat.local/v1/"
    settings.OPENAI_API_KEY = "env-openai"
    ProviderConfig.objects.create(workspace=workspace, provider="lmstudio", base_url="http://studio:1234/v1")
    ProviderConfig.objects.create(workspace=workspace, provider="ollama", model="qwen2.5:7b")

    specs = {s.name: s for s in provider_specs(workspace_id=workspace.pk)}

    assert list(specs) == ["openai", "ollama", "lmstudio", "openai_compatible"]
    assert (specs["lmstudio"].api_base, specs["lmstudio"].litellm_model) == (
        "http://studio:1234/v1",
        "lm_studio/qwen2.5-7b-instruct",
    )
    assert (specs["ollama"].api_base, specs["ollama"].litellm_model) == (
        "http://127.0.0.1:11434",
        "ollama_chat/qwen2.5:7b",
    )
    # the environment's key goes with the environment's URL ...
    assert (specs["openai_compatible"].api_base, specs["openai_compatible"].api_key) == (
        "http://compat.local/v1",
        "env-openai",
    )
    # ... and the OpenAI provider never follows OPENAI_BASE_URL with the OpenAI key
    assert specs["openai"].api_base == OPENAI_API_BASE


def test_the_environment_key_is_never_sent_to_a_base_url_set_for_the_workspace(settings, workspace):
    settings.OPENAI_API_KEY = "env-openai"
    ProviderConfig.objects.create(
        workspace=workspace, provider="openai_compatible", base_url="http://elsewhere:8000/v1"
    )

    (spec,) = provider_specs(workspace_id=workspace.pk, fallback_order=["openai_compatible"])

    assert spec.api_key == "none"


def test_a_spec_never_shows_its_key():
    spec = ProviderSpec("openai", "gpt-4.1-mini", OPENAI_API_BASE, SECRET)

    assert SECRET not in repr(spec)
    assert SECRET not in str(spec)


# --- one call through litellm to the stand-in -------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "path", "auth_header"),
    [
        ("openai_compatible", "/v1/chat/completions", "authorization"),
        ("lmstudio", "/v1/chat/completions", "authorization"),
        ("xai", "/v1/chat/completions", "authorization"),
        ("anthropic", "/v1/messages", "x-api-key"),
        ("ollama", "/api/chat", "authorization"),
        ("gemini", "/v1beta/models/gemini-model:generateContent", "x-goog-api-key"),
    ],
)
def test_each_provider_kind_answers_through_litellm(llm_standin, name, path, auth_header):
    llm_standin.usage = (21, 8)
    bases = {"anthropic": llm_standin.url, "ollama": llm_standin.url, "gemini": f"{llm_standin.url}/v1beta"}
    base = bases.get(name, llm_standin.openai_base)
    spec = ProviderSpec(name, f"{name}-model", base, SECRET)

    answer = complete(spec, MESSAGES, timeout=2, temperature=0.3, max_tokens=50)

    (request,) = llm_standin.requests
    assert (answer.text, answer.model, answer.tokens_in, answer.tokens_out) == (
        "Hola, soy el asistente virtual.",
        f"{name}-model",
        21,
        8,
    )
    assert answer.cost_usd == Decimal("0")  # local, or not in litellm's price table
    assert request.path == path
    assert request.model == f"{name}-model"
    assert SECRET in request.headers[auth_header]
    # (litellm folds the system prompt into the user turn for a Gemini model it does not know)
    assert request.texts[-1][1].endswith("hola que tal")
    assert "Eres un asistente." in request.texts[0][1]


def test_cost_comes_from_litellm_price_table(llm_standin):
    llm_standin.usage = (1000, 100)
    spec = ProviderSpec("openai", "gpt-4.1-mini", llm_standin.openai_base, SECRET)

    answer = complete(spec, MESSAGES, timeout=2, temperature=0.3, max_tokens=50)

    # gpt-4.1-mini: $0.40 / M input tokens, $1.60 / M output tokens
    assert answer.cost_usd == Decimal("0.00056000")


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (lambda s: s.fail_next(1, status=429), "rate_limited"),
        (lambda s: s.fail_next(1, status=500), "server_error"),
        (lambda s: s.fail_next(1, status=503), "server_error"),
        (lambda s: s.fail_next(1, status=401), "auth_error"),
        (lambda s: s.fail_next(1, status=403), "auth_error"),
        (lambda s: s.fail_next(1, status=404), "bad_request"),
        (lambda s: s.stall(2), "timeout"),
        (lambda s: s.empty_next(), "malformed"),
    ],
)
def test_failures_are_classified(llm_standin, fault, outcome):
    fault(llm_standin)
    spec = ProviderSpec("openai_compatible", "m", llm_standin.openai_base, SECRET)

    with pytest.raises(ProviderError) as caught:
        complete(spec, MESSAGES, timeout=0.3, temperature=0.3, max_tokens=50)

    assert (caught.value.provider, caught.value.outcome) == ("openai_compatible", outcome)
    assert SECRET not in caught.value.message


@pytest.mark.parametrize("name", ["openai_compatible", "anthropic", "ollama"])
def test_malformed_json_and_a_dead_server_are_failures(llm_standin, name):
    llm_standin.malformed_next()
    base = llm_standin.openai_base if name == "openai_compatible" else llm_standin.url

    with pytest.raises(ProviderError) as malformed:
        complete(ProviderSpec(name, "m", base, SECRET), MESSAGES, timeout=1, temperature=0.3, max_tokens=50)
    with pytest.raises(ProviderError) as refused:
        complete(
            ProviderSpec(name, "m", "http://127.0.0.1:9", SECRET),
            MESSAGES,
            timeout=1,
            temperature=0,
            max_tokens=5,
        )

    assert malformed.value.outcome == "malformed"
    assert refused.value.outcome == "connection_error"


def test_keys_never_reach_the_logs_even_at_debug_level(llm_standin, caplog):
    caplog.set_level(logging.DEBUG)
    llm_standin.fail_next(1, status=401, body={"error": {"message": f"Incorrect API key provided: {SECRET}"}})
    spec = ProviderSpec("openai_compatible", "m", llm_standin.openai_base, SECRET)

    with pytest.raises(ProviderError) as caught:
        complete(spec, MESSAGES, timeout=1, temperature=0.3, max_tokens=50)
    complete(spec, MESSAGES, timeout=1, temperature=0.3, max_tokens=50)
    from apps.assistant.providers import log_failure

    log_failure(caught.value)

    assert caught.value.outcome == "auth_error"
    assert "rejected our credentials" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in caught.value.message


# --- /api/business/providers ------------------------------------------------------------------------
def _client(workspace, role):
    membership = MembershipFactory(workspace=workspace, role=role)
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


def test_members_read_the_providers_without_any_key(settings, workspace, llm_breakers):
    settings.ANTHROPIC_API_KEY = SECRET
    ProviderConfig.objects.create(
        workspace=workspace, provider="openai", model="gpt-x", api_key=SECRET + "row"
    )
    AssistantSettings.objects.create(workspace=workspace, fallback_order=["xai", "openai", "anthropic"])
    for _ in range(3):
        provider_breaker("openai").failure()

    response = _client(workspace, Role.VIEWER).get("/api/business/providers")

    body = response.json()
    by_name = {p["provider"]: p for p in body["providers"]}
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert body["fallback_order"] == ["openai", "anthropic", "offline"]
    assert body["configured_order"] == ["xai", "openai", "anthropic"]
    assert {k: by_name["openai"][k] for k in ("model", "api_key_set", "key_source", "usable", "circuit")} == {
        "model": "gpt-x",
        "api_key_set": True,
        "key_source": "workspace",
        "usable": True,
        "circuit": "open",
    }
    assert (by_name["anthropic"]["key_source"], by_name["anthropic"]["circuit"]) == ("environment", "closed")
    assert (by_name["xai"]["usable"], by_name["xai"]["api_key_set"]) == (False, False)
    assert "api_key" not in by_name["openai"]
    assert len(body["providers"]) == 7


def test_admins_update_order_models_and_write_only_keys(workspace, llm_breakers):
    client = _client(workspace, Role.ADMIN)
    payload = {
        "fallback_order": ["ollama", "openai"],
        "providers": [
            {"provider": "openai", "model": "gpt-4o-mini", "api_key": SECRET},
            {"provider": "ollama", "base_url": "http://ollama:11434/", "enabled": True},
        ],
    }

    response = client.put("/api/business/providers", payload, format="json")
    unchanged_key = client.put(
        "/api/business/providers", {"providers": [{"provider": "openai", "model": "gpt-4.1"}]}, format="json"
    )

    row = ProviderConfig.objects.get(workspace=workspace, provider="openai")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM assistant_providerconfig WHERE id = %s", [row.pk])
        (stored,) = cursor.fetchone()
    assert response.status_code == 200, response.content
    assert response.json()["fallback_order"] == ["ollama", "openai", "offline"]
    assert SECRET not in response.content.decode() + unchanged_key.content.decode()
    assert (row.model, row.api_key) == ("gpt-4.1", SECRET)
    assert SECRET not in stored  # encrypted at rest
    assert (
        ProviderConfig.objects.get(workspace=workspace, provider="ollama").base_url == "http://ollama:11434"
    )
    assert AssistantSettings.objects.get(workspace=workspace).fallback_order == ["ollama", "openai"]


def test_an_empty_key_removes_the_stored_one(workspace, llm_breakers):
    ProviderConfig.objects.create(workspace=workspace, provider="openai", api_key=SECRET)

    response = _client(workspace, Role.OWNER).put(
        "/api/business/providers", {"providers": [{"provider": "openai", "api_key": ""}]}, format="json"
    )

    assert response.status_code == 200
    assert ProviderConfig.objects.get(workspace=workspace, provider="openai").api_key == ""


@pytest.mark.parametrize(
    "payload",
    [
        {"fallback_order": ["openai", "skynet"]},
        {"providers": [{"provider": "skynet"}]},
        {"providers": [{"provider": "ollama", "base_url": "ftp://x"}]},
        # urlsplit raises ValueError on these: once a 500 (found while describing base_url for schemathesis)
        {"providers": [{"provider": "ollama", "base_url": "http://[ollama"}]},
        {"providers": [{"provider": "ollama", "base_url": "http://\uff03ollama"}]},
        {"providers": [{"provider": "openai"}, {"provider": "openai"}]},
    ],
)
def test_invalid_updates_are_refused_and_change_nothing(workspace, payload):
    response = _client(workspace, Role.ADMIN).put("/api/business/providers", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not ProviderConfig.objects.filter(workspace=workspace).exists()


def test_below_admin_cannot_change_providers(workspace):
    response = _client(workspace, Role.SUPERVISOR).put(
        "/api/business/providers", {"fallback_order": ["openai"]}, format="json"
    )

    assert response.status_code == 403
    assert not AssistantSettings.objects.filter(workspace=workspace, fallback_order=["openai"]).exists()


def test_another_workspace_never_sees_these_providers(workspace, llm_breakers):
    ProviderConfig.objects.create(workspace=workspace, provider="openai", model="mine", api_key="k")

    response = _client(WorkspaceFactory(), Role.ADMIN).get("/api/business/providers")

    openai = next(p for p in response.json()["providers"] if p["provider"] == "openai")
    assert (openai["model"], openai["configured"], openai["api_key_set"]) == ("gpt-4.1-mini", False, False)


# --- the platform's keys go only where the platform sends them ---------------------------------------
ENV_SECRET = "sk-env-PLATFORM-0123456789abcdef"
KEYED = {
    # provider: (environment setting, base URL on the stand-in, header that would carry the key)
    "openai": ("OPENAI_API_KEY", "/v1", "authorization"),
    "anthropic": ("ANTHROPIC_API_KEY", "", "x-api-key"),
    "gemini": ("GEMINI_API_KEY", "/v1beta", "x-goog-api-key"),
    "xai": ("XAI_API_KEY", "/v1", "authorization"),
}


@pytest.mark.parametrize("name", list(KEYED))
def test_a_base_url_set_by_a_workspace_never_receives_the_environment_key(
    settings, workspace, llm_standin, llm_breakers, name
):
    from apps.assistant.reply import generate_reply
    from apps.assistant.types import ReplyRequest

    # given the operator's key in the environment, and a workspace admin pointing the provider at
    # a server of theirs (allowed as an egress target here, so only the key rule is under test)
    env_setting, suffix, header = KEYED[name]
    setattr(settings, env_setting, ENV_SECRET)
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    admin = _client(workspace, Role.ADMIN)
    saved = admin.put(
        "/api/business/providers",
        {"fallback_order": [name], "providers": [{"provider": name, "base_url": llm_standin.url + suffix}]},
        format="json",
    )

    # when a customer message is answered
    result = generate_reply(ReplyRequest(workspace_id=workspace.pk, question="hola"))
    overview = admin.get("/api/business/providers").json()

    # then the server saw no request at all, let alone the key, and the API says why
    assert saved.status_code == 200, saved.content
    assert result.provider == "offline"
    assert llm_standin.requests == []
    state = next(p for p in overview["providers"] if p["provider"] == name)
    assert (state["usable"], state["api_key_set"], state["key_source"]) == (False, False, "")
    assert state["reason"] == "no API key for this base URL (a URL set here needs its own key)"
    # and with the workspace's own key, that key (only) goes there
    admin.put(
        "/api/business/providers", {"providers": [{"provider": name, "api_key": SECRET}]}, format="json"
    )
    generate_reply(ReplyRequest(workspace_id=workspace.pk, question="hola"))
    (request,) = llm_standin.chat_requests()
    assert SECRET in request.headers[header]
    assert ENV_SECRET not in str(request.headers)


@pytest.mark.parametrize("name", list(KEYED))
def test_the_environment_key_still_goes_to_the_providers_public_endpoint(settings, workspace, name):
    env_setting, _, _ = KEYED[name]
    setattr(settings, env_setting, ENV_SECRET)
    public = {
        "openai": "https://api.openai.com/v1",
        "anthropic": "https://api.anthropic.com",
        "gemini": "https://generativelanguage.googleapis.com/v1beta",
        "xai": "https://api.x.ai/v1",
    }[name]
    ProviderConfig.objects.create(workspace=workspace, provider=name, base_url=public)

    (spec,) = provider_specs(workspace_id=workspace.pk, fallback_order=[name])

    assert spec.api_key == ENV_SECRET
