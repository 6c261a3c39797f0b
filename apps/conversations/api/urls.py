from django.urls import path

from apps.conversations.api import views

urlpatterns = [
    path("conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/<int:pk>/", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path(
        "conversations/<int:pk>/messages/",
        views.ConversationMessagesView.as_view(),
        name="conversation-messages",
    ),
    path("conversations/<int:pk>/reply", views.ConversationReplyView.as_view(), name="conversation-reply"),
    path(
        "conversations/<int:pk>/takeover",
        views.ConversationTakeoverView.as_view(),
        name="conversation-takeover",
    ),
    path(
        "conversations/<int:pk>/handback",
        views.ConversationHandbackView.as_view(),
        name="conversation-handback",
    ),
    path("conversations/<int:pk>/close", views.ConversationCloseView.as_view(), name="conversation-close"),
    path("conversations/<int:pk>/read", views.ConversationReadView.as_view(), name="conversation-read"),
    path("conversations/<int:pk>/assign", views.ConversationAssignView.as_view(), name="conversation-assign"),
    path("conversations/<int:pk>/notes/", views.ConversationNotesView.as_view(), name="conversation-notes"),
    path(
        "conversations/<int:pk>/attachment",
        views.ConversationAttachmentView.as_view(),
        name="conversation-attachment",
    ),
    path("canned-replies/", views.CannedReplyListView.as_view(), name="canned-reply-list"),
    path("canned-replies/<int:pk>/", views.CannedReplyDetailView.as_view(), name="canned-reply-detail"),
    path("contacts/", views.ContactListView.as_view(), name="contact-list"),
    path("contacts/import", views.ContactImportView.as_view(), name="contact-import"),
    path("contacts/export", views.ContactExportView.as_view(), name="contact-export"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact-detail"),
    path("queue/", views.QueueListView.as_view(), name="queue-list"),
    path("queue/<int:pk>/cancel", views.QueueCancelView.as_view(), name="queue-cancel"),
    path("queue/<int:pk>/retry", views.QueueRetryView.as_view(), name="queue-retry"),
    path("messages/<int:pk>/media", views.MessageMediaView.as_view(), name="message-media"),
]
