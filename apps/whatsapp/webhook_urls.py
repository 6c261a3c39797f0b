from django.urls import URLPattern, path

from apps.whatsapp.webhook import whatsapp_webhook

urlpatterns: list[URLPattern] = [
    path("", whatsapp_webhook, name="whatsapp-webhook"),
]
