from django.urls import path

from apps.assistant.api import lmstudio_views as views

# Mounted at /api/lmstudio/
urlpatterns = [
    path("status", views.LMStudioStatusView.as_view(), name="lmstudio-status"),
    path("models/load", views.LMStudioLoadView.as_view(), name="lmstudio-load"),
    path("models/loads", views.LMStudioLoadsView.as_view(), name="lmstudio-loads"),
    path("models/unload", views.LMStudioUnloadView.as_view(), name="lmstudio-unload"),
    path("ollama/models", views.OllamaModelsView.as_view(), name="ollama-models"),
    path("ollama/pull", views.OllamaPullView.as_view(), name="ollama-pull"),
    path("ollama/pulls", views.OllamaPullsView.as_view(), name="ollama-pulls"),
]
