from django.urls import path

from apps.campaigns.api import views

urlpatterns = [
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<int:pk>/schedule", views.CampaignScheduleView.as_view(), name="campaign-schedule"),
    path("campaigns/<int:pk>/unschedule", views.CampaignUnscheduleView.as_view(), name="campaign-unschedule"),
    path("campaigns/<int:pk>/pause", views.CampaignPauseView.as_view(), name="campaign-pause"),
    path("campaigns/<int:pk>/resume", views.CampaignResumeView.as_view(), name="campaign-resume"),
    path("campaigns/<int:pk>/cancel", views.CampaignCancelView.as_view(), name="campaign-cancel"),
    path("campaigns/<int:pk>/funnel", views.CampaignFunnelView.as_view(), name="campaign-funnel"),
    path("campaigns/<int:pk>/preview", views.CampaignPreviewView.as_view(), name="campaign-preview"),
    path(
        "campaigns/<int:pk>/recipients/",
        views.CampaignRecipientListView.as_view(),
        name="campaign-recipients",
    ),
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
