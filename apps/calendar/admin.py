from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.calendar import services
from apps.calendar.models import Booking, BookingReminder, Connection, Service
from chatbot.exceptions import DomainError


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin[Connection]):
    """Connections are made by the OAuth flow, never typed in; the token column is never shown."""

    list_display = ["account_email", "provider", "workspace", "status", "updated_at"]
    list_filter = ["provider", "status"]
    search_fields = ["account_email"]
    fields = ("workspace", "provider", "account_email", "calendar_id", "status", "last_error", "connected_by")
    readonly_fields = fields
    actions = ["disconnect"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Disconnect (revoke at the provider, forget the tokens)")
    def disconnect(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset:
            try:
                services.connection_disconnect(connection=connection, actor_id=request.user.pk)
            except DomainError as exc:
                self.message_user(request, f"{connection}: {exc.message}", messages.ERROR)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    list_display = ["name", "workspace", "duration_minutes", "connection", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    raw_id_fields = ["connection"]


class ReminderInline(admin.TabularInline[BookingReminder, Booking]):
    """What happened to each reminder (sent, or skipped and why); written by the reminder task only."""

    model = BookingReminder
    fields = ("hours_before", "status", "reason", "message", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Booking | None = None) -> bool:
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin[Booking]):
    """Read-only: bookings change through the services (slots, provider events), not by editing rows."""

    inlines = [ReminderInline]
    list_display = ["start", "end", "service", "customer_name", "status", "workspace"]
    list_filter = ["status"]
    search_fields = ["customer_name", "customer_phone", "external_event_id"]
    date_hierarchy = "start"
    readonly_fields = [f.name for f in Booking._meta.fields]
    actions = ["cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel (free the time, delete the provider's event)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        for booking in queryset.select_related("service", "connection"):
            services.booking_cancel(booking=booking)
