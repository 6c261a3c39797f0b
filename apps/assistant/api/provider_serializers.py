from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from apps.assistant.local_models import LMStudioStatus, LocalModel, OllamaModel
from apps.assistant.models import AssistantSettings, ModelPull, Provider
from apps.assistant.providers import LLM_PROVIDERS, ProviderState
from apps.assistant.services import ASSISTANT_SETTING_BOUNDS
from chatbot.circuit import STATES
from chatbot.openapi import input_schema
from chatbot.serializers import Field, JSONInput

PROVIDER_CHOICES = [(p, str(Provider(p).label)) for p in LLM_PROVIDERS]
ORDER_CHOICES = [*PROVIDER_CHOICES, (Provider.OFFLINE.value, str(Provider.OFFLINE.label))]
CIRCUIT_CHOICES = list(STATES)


def _http_url(value: str) -> str:
    # Not URLField: Docker service names ("http://ollama:11434") have no dot and must be accepted.
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[x" (a bad IPv6 address), a host that NFKC turns into "/?#@:"
        parts = urlsplit("")
    if value and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise serializers.ValidationError("Enter an http:// or https:// URL.")
    return value.rstrip("/")


# --- providers ------------------------------------------------------------------------------------
class ProviderOutput(serializers.Serializer[ProviderState]):
    provider = serializers.ChoiceField(choices=PROVIDER_CHOICES)
    display_name = serializers.CharField(source="label")
    configured = serializers.BooleanField(help_text="The workspace has its own settings for this provider.")
    enabled = serializers.BooleanField()
    model = serializers.CharField()
    default_model = serializers.CharField()
    base_url = serializers.CharField(help_text="Set for this workspace; empty = the default.")
    effective_base_url = serializers.CharField(help_text="Where calls go; empty = the provider's public API.")
    api_key_set = serializers.BooleanField(
        help_text="Whether a key is available. The key itself is never shown."
    )
    key_source = serializers.ChoiceField(choices=["workspace", "environment", ""])
    usable = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why the provider cannot be used, when it cannot.")
    circuit = serializers.ChoiceField(
        choices=CIRCUIT_CHOICES, help_text="Circuit breaker state (all workers)."
    )


class ProvidersOutput(serializers.Serializer[dict[str, Any]]):
    fallback_order = serializers.ListField(
        child=serializers.ChoiceField(choices=ORDER_CHOICES),
        help_text="The order replies use now (usable providers only); the offline responder is always last.",
    )
    configured_order = serializers.ListField(
        child=serializers.CharField(),
        help_text="The order saved for this workspace; empty = AI_FALLBACK_ORDER.",
    )
    providers = ProviderOutput(many=True)


@input_schema(
    fields={"base_url": {"pattern": r"^([Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=:-]+([/?#]\S*)?)?$"}}
)
class ProviderInput(JSONInput):
    provider = serializers.ChoiceField(choices=PROVIDER_CHOICES)
    enabled = serializers.BooleanField(required=False)
    model = serializers.CharField(max_length=128, required=False, allow_blank=True)
    base_url = serializers.CharField(max_length=200, required=False, allow_blank=True)
    api_key = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Write-only. Left out: unchanged; empty: removed (the environment's key applies).",
    )

    def validate_base_url(self, value: str) -> str:
        return _http_url(value)


class ProvidersInput(JSONInput):
    fallback_order = serializers.ListField(
        child=serializers.ChoiceField(choices=ORDER_CHOICES), required=False
    )
    providers = ProviderInput(many=True, required=False)

    def validate_providers(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [p["provider"] for p in value]
        if len(names) != len(set(names)):
            raise serializers.ValidationError("Each provider may appear once.")
        return value


# --- how replies are produced ---------------------------------------------------------------------
class AssistantSettingsOutput(serializers.Serializer[AssistantSettings]):
    enabled = serializers.BooleanField(help_text="Off: no bot replies; conversations wait for a person.")
    temperature = serializers.FloatField()
    max_tokens = serializers.IntegerField(help_text="Longest answer the model may write, in tokens.")
    provider_timeout_seconds = serializers.FloatField(help_text="One provider call, at most.")
    reply_budget_seconds = serializers.FloatField(
        help_text="A whole reply, fallbacks included; then the offline responder answers."
    )
    cache_ttl_seconds = serializers.IntegerField(
        help_text="How long a history-less answer is reused; 0 = never."
    )
    debounce_seconds = serializers.FloatField(
        help_text="Wait after a customer's message, so a burst is answered once."
    )
    history_token_budget = serializers.IntegerField(help_text="Earlier turns sent to the model, in tokens.")


def _bounded(name: str, field: type[Field]) -> Field:
    low, high = ASSISTANT_SETTING_BOUNDS[name]
    return field(required=False, min_value=low, max_value=high)  # type: ignore[call-arg]


class AssistantSettingsInput(JSONInput):
    enabled = serializers.BooleanField(required=False)
    temperature = _bounded("temperature", serializers.FloatField)
    max_tokens = _bounded("max_tokens", serializers.IntegerField)
    provider_timeout_seconds = _bounded("provider_timeout_seconds", serializers.FloatField)
    reply_budget_seconds = _bounded("reply_budget_seconds", serializers.FloatField)
    cache_ttl_seconds = _bounded("cache_ttl_seconds", serializers.IntegerField)
    debounce_seconds = _bounded("debounce_seconds", serializers.FloatField)
    history_token_budget = _bounded("history_token_budget", serializers.IntegerField)


# --- local models (LM Studio, Ollama) -------------------------------------------------------------
class ModelInput(JSONInput):
    model = serializers.CharField(max_length=200)


class LocalModelOutput(serializers.Serializer[LocalModel]):
    key = serializers.CharField()
    display_name = serializers.CharField()
    type = serializers.CharField()
    loaded = serializers.BooleanField()
    instance_ids = serializers.ListField(child=serializers.CharField())


class LMStudioStatusOutput(serializers.Serializer[LMStudioStatus]):
    reachable = serializers.BooleanField()
    base_url = serializers.CharField()
    api_version = serializers.CharField(help_text='"v1" (LM Studio 0.4+), "v0" (older), or empty.')
    models = LocalModelOutput(many=True)
    error = serializers.CharField()


class LMStudioUnloadOutput(serializers.Serializer[dict[str, Any]]):
    model = serializers.CharField()
    unloaded = serializers.ListField(
        child=serializers.CharField(), help_text="Instances unloaded; empty: none was."
    )


class OllamaModelOutput(serializers.Serializer[OllamaModel]):
    name = serializers.CharField()
    size = serializers.IntegerField()
    modified_at = serializers.CharField()
    digest = serializers.CharField()
    family = serializers.CharField()
    parameter_size = serializers.CharField()


class OllamaModelsOutput(serializers.Serializer[dict[str, Any]]):
    base_url = serializers.CharField()
    models = OllamaModelOutput(many=True)


class ModelPullOutput(serializers.Serializer[ModelPull]):
    kind = serializers.ChoiceField(
        choices=ModelPull.Kind.choices, help_text="An Ollama download or an LM Studio load."
    )
    model = serializers.CharField()
    status = serializers.ChoiceField(choices=["queued", "pulling", "loading", "success", "error"])
    detail = serializers.CharField(
        help_text='Ollama\'s last progress line ("pulling 6a0746a1ec1a"), or how a load ended.'
    )
    completed_bytes = serializers.IntegerField()
    total_bytes = serializers.IntegerField(help_text="0 until Ollama says how big the layer is.")
    error_code = serializers.CharField(
        help_text='"ollama_not_found", "lmstudio_unreachable", "lmstudio_http_500", "url_not_allowed", ...'
    )
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
