"""WebSocket routes; the dashboard's consumers register here."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
