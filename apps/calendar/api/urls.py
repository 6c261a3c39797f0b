from django.urls import path

from apps.calendar.api import views

# Mounted at /api/calendar/
urlpatterns = [
    path("connections/", views.ConnectionListView.as_view(), name="calendar-connection-list"),
    path("connections/connect", views.ConnectStartView.as_view(), name="calendar-connect"),
    path("connections/callback", views.ConnectFinishView.as_view(), name="calendar-callback"),
    path("connections/<int:pk>/disconnect", views.DisconnectView.as_view(), name="calendar-disconnect"),
    path("services/", views.ServiceListView.as_view(), name="calendar-service-list"),
    path("services/<int:pk>/", views.ServiceDetailView.as_view(), name="calendar-service-detail"),
    path("services/<int:pk>/slots", views.ServiceSlotsView.as_view(), name="calendar-service-slots"),
    path("bookings/", views.BookingListView.as_view(), name="calendar-booking-list"),
    path("bookings/<int:pk>/", views.BookingDetailView.as_view(), name="calendar-booking-detail"),
    path("bookings/<int:pk>/cancel", views.BookingCancelView.as_view(), name="calendar-booking-cancel"),
    path(
        "bookings/<int:pk>/reschedule",
        views.BookingRescheduleView.as_view(),
        name="calendar-booking-reschedule",
    ),
]
