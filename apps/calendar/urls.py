from django.urls import path

from apps.calendar import views

urlpatterns = [
    path("<str:token>.ics", views.booking_ics, name="booking-ics"),
]
