from django.urls import path

from apps.sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("", views.sandbox_page, name="page"),
    path("send", views.sandbox_send, name="send"),
    path("messages.json", views.sandbox_messages, name="messages"),
]
