from django.urls import path

from apps.assistant.api import provider_views

# Mounted at /api/business/providers
urlpatterns = [
    path("", provider_views.ProvidersView.as_view(), name="business-providers"),
]
