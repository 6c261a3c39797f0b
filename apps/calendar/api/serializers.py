from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.calendar.models import (
    REMINDER_HOURS_MAX,
    SLOT_MINUTES,
    Booking,
    Connection,
    Service,
    default_reminder_hours,
)
from chatbot.openapi import input_schema
from chatbot.serializers import JSONInput, QueryInput

MAX_ID = 2**63 - 1


class ConnectionOutput(serializers.ModelSerializer[Connection]):
    """Never the token: only who and whether it works."""

    class Meta:
        model = Connection
        fields = [
            "id",
            "provider",
            "account_email",
            "calendar_id",
            "status",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConnectStartInput(JSONInput):
    provider = serializers.ChoiceField(choices=Connection.Provider.choices)


class ConnectStartOutput(serializers.Serializer[Any]):
    authorization_url = serializers.URLField()


class ConnectFinishInput(JSONInput):
    state = serializers.CharField(max_length=128)
    code = serializers.CharField(max_length=4096, required=False, allow_blank=True, default="")
    error = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


_ON_THE_GRID = {"multipleOf": SLOT_MINUTES}


@input_schema(
    fields={
        "duration_minutes": _ON_THE_GRID,
        "buffer_before_minutes": _ON_THE_GRID,
        "buffer_after_minutes": _ON_THE_GRID,
        "reminder_hours": {"uniqueItems": True},
    }
)
class _ServiceFields(JSONInput):
    name = serializers.CharField(max_length=120)
    duration_minutes = serializers.IntegerField(min_value=SLOT_MINUTES, max_value=24 * 60)
    buffer_before_minutes = serializers.IntegerField(min_value=0, max_value=240, default=0)
    buffer_after_minutes = serializers.IntegerField(min_value=0, max_value=240, default=0)
    price = serializers.FloatField(
        min_value=0, max_value=99_999_999, allow_null=True, default=None, help_text="Rounded to cents."
    )
    connection = serializers.IntegerField(min_value=1, max_value=MAX_ID, allow_null=True, default=None)
    min_notice_minutes = serializers.IntegerField(min_value=0, max_value=60 * 24 * 30, default=60)
    horizon_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    daily_cap = serializers.IntegerField(min_value=1, max_value=1000, allow_null=True, default=None)
    is_active = serializers.BooleanField(default=True)
    reminder_hours = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=REMINDER_HOURS_MAX),
        max_length=5,
        default=default_reminder_hours,
        help_text="Hours before the appointment a reminder goes out, each once; empty: no reminders.",
    )
    reminder_template = serializers.CharField(
        max_length=512,
        allow_blank=True,
        default="",
        help_text="An approved template's name (body variables: the service, the local date and time) for "
        "reminders outside the 24-hour window; empty: those are skipped.",
    )


class ServiceInput(_ServiceFields):
    pass


class ServiceUpdateInput(_ServiceFields):
    pass


class ServiceOutput(serializers.ModelSerializer[Service]):
    connection = serializers.IntegerField(source="connection_id", allow_null=True)

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "duration_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "price",
            "connection",
            "min_notice_minutes",
            "horizon_days",
            "daily_cap",
            "is_active",
            "reminder_hours",
            "reminder_template",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SlotsQuery(QueryInput):
    start = serializers.DateTimeField(help_text="With a time zone; default now.", required=False)
    days = serializers.IntegerField(min_value=1, max_value=31, default=7)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


class SlotsOutput(serializers.Serializer[Any]):
    timezone = serializers.CharField()
    slots = serializers.ListField(child=serializers.DateTimeField())


class BookingFilter(QueryInput):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    status = serializers.ChoiceField(choices=Booking.Status.choices, required=False)


class BookingInput(JSONInput):
    service = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    start = serializers.DateTimeField(help_text=f"With a time zone, on a {SLOT_MINUTES}-minute boundary.")
    idempotency_key = serializers.CharField(max_length=64, help_text="The same key books once.")
    customer_name = serializers.CharField(max_length=255, allow_blank=True, default="")
    customer_phone = serializers.CharField(max_length=32, allow_blank=True, default="")


class RescheduleInput(JSONInput):
    start = serializers.DateTimeField()
    idempotency_key = serializers.CharField(max_length=64)


class BookingOutput(serializers.ModelSerializer[Booking]):
    service = serializers.IntegerField(source="service_id")
    service_name = serializers.CharField(source="service.name")
    contact = serializers.IntegerField(source="contact_id", allow_null=True)
    rescheduled_from = serializers.IntegerField(source="rescheduled_from_id", allow_null=True)

    class Meta:
        model = Booking
        fields = [
            "id",
            "service",
            "service_name",
            "contact",
            "customer_name",
            "customer_phone",
            "start",
            "end",
            "status",
            "external_event_id",
            "idempotency_key",
            "rescheduled_from",
            "created_at",
            "cancelled_at",
        ]
        read_only_fields = fields
