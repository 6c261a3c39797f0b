from django.contrib.auth import views as auth_views
from django.urls import path

from apps.dashboard import analytics_views, calendar_views, campaign_views, inbox_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        views.LoginView.as_view(),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/list/", inbox_views.inbox_list, name="inbox-list"),
    path("inbox/waiting/", inbox_views.inbox_waiting, name="inbox-waiting"),
    path("inbox/replies/", inbox_views.canned_replies, name="canned-replies"),
    path("inbox/replies/<int:pk>/delete/", inbox_views.canned_reply_delete, name="canned-reply-delete"),
    path("conversations/<int:pk>/", inbox_views.conversation_page, name="conversation"),
    path("conversations/<int:pk>/thread/", inbox_views.conversation_thread, name="conversation-thread"),
    path("conversations/<int:pk>/head/", inbox_views.conversation_head, name="conversation-head"),
    path("conversations/<int:pk>/reply/", inbox_views.conversation_reply, name="conversation-reply"),
    path("conversations/<int:pk>/assign/", inbox_views.conversation_assign, name="conversation-assign"),
    path("conversations/<int:pk>/note/", inbox_views.conversation_note, name="conversation-note"),
    path("conversations/<int:pk>/attach/", inbox_views.conversation_attach, name="conversation-attach"),
    path("conversations/<int:pk>/canned/", inbox_views.conversation_canned, name="conversation-canned"),
    path(
        "conversations/<int:pk>/template/",
        campaign_views.conversation_template,
        name="conversation-template",
    ),
    path(
        "conversations/<int:pk>/<slug:action>/", inbox_views.conversation_action, name="conversation-action"
    ),
    path("queue/", views.queue, name="queue"),
    path("queue/list/", views.queue_list, name="queue-list"),
    path("queue/<int:pk>/<slug:action>/", views.queue_action, name="queue-action"),
    path("templates/", campaign_views.template_list, name="templates"),
    path("templates/sync/", campaign_views.template_sync, name="template-sync"),
    path("contacts/import/", campaign_views.contact_import, name="contact-import"),
    path("contacts/import/list/", campaign_views.contact_import_list, name="contact-import-list"),
    path("segments/", campaign_views.segment_list, name="segments"),
    path("segments/count/", campaign_views.segment_count, name="segment-count"),
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/<int:pk>/", campaign_views.campaign_page, name="campaign"),
    path("campaigns/<int:pk>/live/", campaign_views.campaign_funnel, name="campaign-live"),
    path("campaigns/<int:pk>/recipients.csv", campaign_views.campaign_recipients_csv, name="campaign-csv"),
    path("campaigns/<int:pk>/<slug:action>/", campaign_views.campaign_action, name="campaign-action"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/list/", views.alerts_list, name="alerts-list"),
    path("alerts/rules/", views.alert_rules, name="alert-rules"),
    path("alerts/rules/new/", views.alert_rule_create, name="alert-rule-create"),
    path("alerts/rules/<int:pk>/", views.alert_rule_edit, name="alert-rule-edit"),
    path("alerts/rules/<int:pk>/delete/", views.alert_rule_delete, name="alert-rule-delete"),
    path("alerts/<int:pk>/<slug:action>/", views.alert_action, name="alert-action"),
    path("analytics/", analytics_views.analytics, name="analytics"),
    path("analytics/export/<slug:table>/", analytics_views.analytics_export, name="analytics-export"),
    path("calendar/", calendar_views.calendar_page, name="calendar"),
    # No trailing slash: the address registered with Google and Microsoft (CALENDAR_OAUTH_REDIRECT_URL).
    path("calendar/callback", calendar_views.calendar_callback, name="calendar-callback"),
    path("calendar/connect/<slug:provider>/", calendar_views.calendar_connect, name="calendar-connect"),
    path(
        "calendar/connections/<int:pk>/disconnect/",
        calendar_views.calendar_disconnect,
        name="calendar-disconnect",
    ),
    path("calendar/bookings/<int:pk>/cancel/", calendar_views.booking_cancel, name="calendar-booking-cancel"),
    path("business/", views.business, name="business"),
    path("business/providers/", views.business_providers, name="providers"),
    path("business/assistant/", views.assistant_settings, name="assistant-settings"),
    path("business/knowledge/", views.knowledge_create, name="knowledge-create"),
    path("business/knowledge/import/", views.knowledge_import, name="knowledge-import"),
    path("business/knowledge/<int:pk>/", views.knowledge_edit, name="knowledge-edit"),
    path("business/knowledge/<int:pk>/delete/", views.knowledge_delete, name="knowledge-delete"),
]
