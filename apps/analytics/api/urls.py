from django.urls import path

from apps.analytics.api import views

# Mounted at /api/analytics/
urlpatterns = [
    path("", views.IndexView.as_view(), name="analytics-index"),
    path("messages/", views.MessagesView.as_view(), name="analytics-messages"),
    path("conversations/", views.ConversationsView.as_view(), name="analytics-conversations"),
    path("response-times/", views.ResponseTimesView.as_view(), name="analytics-response-times"),
    path("delivery/", views.DeliveryView.as_view(), name="analytics-delivery"),
    path("llm/", views.LLMView.as_view(), name="analytics-llm"),
    path("alerts/", views.AlertsView.as_view(), name="analytics-alerts"),
    path("opt-outs/", views.OptOutsView.as_view(), name="analytics-opt-outs"),
    path("campaigns/", views.CampaignsView.as_view(), name="analytics-campaigns"),
    path("export/<str:table>", views.ExportView.as_view(), name="analytics-export"),
]
