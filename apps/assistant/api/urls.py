from django.urls import path

from apps.assistant.api import provider_views, views

# Mounted at /api/business/
urlpatterns = [
    path("", views.BusinessProfileView.as_view(), name="business-profile"),
    path("assistant", provider_views.AssistantSettingsView.as_view(), name="business-assistant"),
    path("knowledge/", views.KnowledgeListView.as_view(), name="knowledge-list"),
    path("knowledge/import", views.KnowledgeImportView.as_view(), name="knowledge-import"),
    path("knowledge/search", views.KnowledgeSearchView.as_view(), name="knowledge-search"),
    path("knowledge/<int:pk>/", views.KnowledgeDetailView.as_view(), name="knowledge-detail"),
]
