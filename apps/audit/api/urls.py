from django.urls import path

from apps.audit.api import views

# Mounted at /api/audit/
urlpatterns = [
    path("", views.AuditListView.as_view(), name="audit-list"),
]
