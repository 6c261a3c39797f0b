from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "apps.assistant"
    label = "assistant"
    verbose_name = "Assistant"

    def ready(self) -> None:
        from apps.assistant import metrics  # noqa: F401 - /metrics lists them from the start
        from apps.assistant.providers import LLM_PROVIDERS, breaker_name
        from chatbot import circuit

        circuit.declare(*(breaker_name(name) for name in LLM_PROVIDERS))  # listed closed before any call
