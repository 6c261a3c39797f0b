"""pytest fixtures for the LLM stand-in (register with `pytest_plugins = ["standins.llm_fixtures"]`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from standins.llm import LLMStandIn


@pytest.fixture
def llm_standin(settings: Any) -> Iterator[LLMStandIn]:
    """A started stand-in answering at once; faults and answers are set per test.

    It listens on 127.0.0.1, which the egress rules refuse for URLs set through the API: the test
    allows it as an operator would (EGRESS_ALLOWED_NETWORKS), the guard itself stays as it is."""
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    standin = LLMStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def llm_breakers(settings: Any, tmp_path: Any) -> None:
    """Circuit breakers of this test only: embedded mode under a fresh DATA_DIR."""
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path


@pytest.fixture
def standin_providers(llm_standin: LLMStandIn, llm_breakers: None) -> Callable[..., list[str]]:
    """Point a workspace's providers at the stand-in; returns the fallback order set.

        standin_providers(workspace_id, ["openai_compatible", "lmstudio"], models={"lmstudio": "m2"},
                          provider_timeout_seconds=0.5)

    Each provider gets a model named after it (unless `models` says otherwise), so faults can be
    aimed at one provider with `llm_standin.fail_next(model=...)`. Extra keyword arguments are set on
    the workspace's AssistantSettings.
    """
    from apps.assistant.models import AssistantSettings, ProviderConfig

    def configure(
        workspace_id: int,
        order: list[str],
        *,
        models: dict[str, str] | None = None,
        api_keys: dict[str, str] | None = None,
        **assistant_settings: Any,
    ) -> list[str]:
        bases = {kind: llm_standin.url for kind in ("anthropic", "ollama", "lmstudio")}
        bases["gemini"] = f"{llm_standin.url}/v1beta"
        for name in order:
            if name == "offline":
                continue
            base = bases.get(name, llm_standin.openai_base)
            ProviderConfig.objects.update_or_create(
                workspace_id=workspace_id,
                provider=name,
                defaults={
                    "enabled": True,
                    "model": (models or {}).get(name, f"{name}-model"),
                    "base_url": base,
                    "api_key": (api_keys or {}).get(name, f"test-key-{name}"),
                },
            )
        AssistantSettings.objects.update_or_create(
            workspace_id=workspace_id, defaults={"fallback_order": list(order), **assistant_settings}
        )
        return list(order)

    return configure
