from django.urls import path

from apps.campaigns.api import views

urlpatterns = [
    path("templates/", views.TemplateListView.as_view(), name="template-list"),
    path("templates/sync", views.TemplateSyncView.as_view(), name="template-sync"),
    path("templates/<int:pk>/", views.TemplateDetailView.as_view(), name="template-detail"),
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/count", views.SegmentPreviewCountView.as_view(), name="segment-preview-count"),
    path("segments/<int:pk>/", views.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<int:pk>/count", views.SegmentCountView.as_view(), name="segment-count"),
    path("audience/settings", views.AudienceSettingsView.as_view(), name="audience-settings"),
    path("contacts/imports/", views.ContactImportListView.as_view(), name="contact-import-list"),
    path("contacts/imports/<int:pk>/", views.ContactImportDetailView.as_view(), name="contact-import-detail"),
    path("contacts/<int:pk>/consent", views.ContactConsentView.as_view(), name="contact-consent"),
    path(
        "conversations/<int:pk>/template",
        views.ConversationTemplateSendView.as_view(),
        name="conversation-template",
    ),
    path(
        "conversations/<int:pk>/interactive",
        views.ConversationInteractiveSendView.as_view(),
        name="conversation-interactive",
    ),
]
