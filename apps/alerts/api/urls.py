from django.urls import path

from apps.alerts.api import views

# Mounted at /api/alerts/
urlpatterns = [
    path("", views.AlertListView.as_view(), name="alert-list"),
    path("<int:pk>/", views.AlertDetailView.as_view(), name="alert-detail"),
    path("<int:pk>/acknowledge", views.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("<int:pk>/resolve", views.AlertResolveView.as_view(), name="alert-resolve"),
    path("<int:pk>/assign", views.AlertAssignView.as_view(), name="alert-assign"),
    path("rules/", views.AlertRuleListView.as_view(), name="alert-rule-list"),
    path("rules/<int:pk>/", views.AlertRuleDetailView.as_view(), name="alert-rule-detail"),
]
