from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from chatbot import health
from chatbot.api_docs import ApiDocsView

# Under /api/ these answer the API's JSON error body, not Django's HTML page (only with DEBUG off).
handler400 = "chatbot.exceptions.bad_request"
handler404 = "chatbot.exceptions.page_not_found"

urlpatterns = [
    # Browsers ask for /favicon.ico on every page whatever the page links to: send them to the icon.
    path(
        "favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}dashboard/favicon.svg", permanent=True)
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    path("api/auth/", include("apps.accounts.api.auth_urls")),
    path("api/accounts/", include("apps.accounts.api.urls")),
    path("api/whatsapp/", include("apps.whatsapp.api.urls")),
    path("api/business/providers", include("apps.assistant.api.provider_urls")),
    path("api/business/", include("apps.assistant.api.urls")),
    path("api/lmstudio/", include("apps.assistant.api.lmstudio_urls")),
    path("api/audit/", include("apps.audit.api.urls")),
    path("api/", include("apps.campaigns.api.urls")),
    path("api/alerts/", include("apps.alerts.api.urls")),
    path("api/calendar/", include("apps.calendar.api.urls")),
    path("api/analytics/", include("apps.analytics.api.urls")),
    path("api/", include("apps.conversations.api.urls")),
    path("webhooks/whatsapp/", include("apps.whatsapp.webhook_urls")),
    path("sandbox/", include("apps.sandbox.urls")),
    path("booking/", include("apps.calendar.urls")),  # the .ics links sent to customers (signed, no login)
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("apps.dashboard.urls")),
]
