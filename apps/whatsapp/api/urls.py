from django.urls import path

from apps.whatsapp.api import views

urlpatterns = [
    path("channels/", views.ChannelListView.as_view(), name="channel-list"),
    path("channels/<int:pk>/", views.ChannelDetailView.as_view(), name="channel-detail"),
    path("status", views.WhatsAppStatusView.as_view(), name="whatsapp-status"),
]
