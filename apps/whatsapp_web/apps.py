from django.apps import AppConfig


class WhatsAppWebConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.whatsapp_web"
    label = "whatsapp_web"
    verbose_name = "WhatsApp Web"

    def ready(self) -> None:
        from apps.whatsapp_web import metrics  # noqa: F401 - /metrics lists them from the start
