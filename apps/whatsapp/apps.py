from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class WhatsappConfig(AppConfig):
    name = "apps.whatsapp"
    label = "whatsapp"
    verbose_name = "WhatsApp"

    def ready(self) -> None:
        # Signals, not calls in the services: the webhook's route cache must forget a channel however
        # it changed (the services, the admin, `rotate_keys`, the sandbox seed, a workspace's cascade).
        from django.conf import settings

        from apps.whatsapp.cloud import graph_breaker_name
        from apps.whatsapp.models import Channel
        from chatbot import circuit

        # /metrics lists the Graph hosts' breakers from the start (closed), before any send.
        circuit.declare(
            graph_breaker_name(settings.WHATSAPP_GRAPH_URL),
            graph_breaker_name(settings.WHATSAPP_SANDBOX_GRAPH_URL),
        )

        post_save.connect(_channel_changed, sender=Channel, dispatch_uid="whatsapp-route-cache-save")
        post_delete.connect(_channel_changed, sender=Channel, dispatch_uid="whatsapp-route-cache-delete")


def _channel_changed(**kwargs: Any) -> None:
    from apps.whatsapp.route_cache import route_cache_invalidate

    route_cache_invalidate()
