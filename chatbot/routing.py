"""WebSocket routes; the dashboard's consumers register here."""

from django.urls import URLPattern

from apps.dashboard.routing import websocket_urlpatterns as dashboard_routes

websocket_urlpatterns: list[URLPattern] = [*dashboard_routes]
