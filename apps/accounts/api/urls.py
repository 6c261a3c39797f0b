from django.urls import path

from apps.accounts.api import views

urlpatterns = [
    path("workspace/", views.WorkspaceView.as_view(), name="workspace"),
    path("members/", views.MemberListView.as_view(), name="member-list"),
    path("members/<int:pk>/", views.MemberDetailView.as_view(), name="member-detail"),
]
