from django.apps import AppConfig


class WhatsappConfig(AppConfig):
    name = "apps.whatsapp"
    label = "whatsapp"
    verbose_name = "WhatsApp"
