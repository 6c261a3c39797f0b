from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.whatsapp.models import DEFAULT_SEND_RATE, MAX_SEND_RATE, Channel
from apps.whatsapp.status import ChannelStatus
from chatbot.circuit import STATES
from chatbot.openapi import input_schema
from chatbot.serializers import JSONInput

WRITE_ONLY_HELP = "Write-only: never returned. Absent keeps the stored value; null clears it."


def _secret() -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_null=True, max_length=1024, write_only=True, help_text=WRITE_ONLY_HELP
    )


@input_schema(
    # A Cloud API channel (the default kind) needs its phone_number_id, Meta's numeric id; no other
    # kind takes one (services._channel_check, channel_number_claim_verify).
    whole={
        "anyOf": [
            {
                "required": ["kind"],
                "properties": {
                    "kind": {"not": {"enum": [Channel.Kind.CLOUD.value]}},
                    "phone_number_id": {"maxLength": 0},
                },
            },
            {
                # ... and brings its own app secret and access token, which must read that number.
                "required": ["phone_number_id", "app_secret", "access_token"],
                "properties": {
                    "kind": {"enum": [Channel.Kind.CLOUD.value]},
                    "phone_number_id": {"minLength": 1},
                    "app_secret": {"type": "string", "minLength": 1},
                    "access_token": {"type": "string", "minLength": 1},
                },
            },
        ]
    },
)
class ChannelInput(JSONInput):
    """Also used for PATCH (partially): absent fields are left as they are."""

    kind = serializers.ChoiceField(choices=Channel.Kind.choices, default=Channel.Kind.CLOUD)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    phone_number_id = serializers.RegexField(
        # "+", not "*": blank is allowed apart, and the schema's oneOf (digits | empty) must not
        # match "" twice; "$", not "\Z", because the pattern is published as an ECMA regex.
        r"^[0-9]+$",
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="Meta's numeric id; required for Cloud API, empty for the other kinds.",
        error_messages={"invalid": "Digits only."},
    )
    display_phone_number = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    waba_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    send_rate = serializers.IntegerField(min_value=1, max_value=MAX_SEND_RATE, default=DEFAULT_SEND_RATE)
    messaging_limit = serializers.IntegerField(
        min_value=1,
        max_value=10_000_000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Meta's messaging limit: distinct customers a campaign may start per rolling 24 h "
        "(250, 2000, 10000, 100000, as Meta's WhatsApp Manager shows it); null for unlimited.",
    )
    is_active = serializers.BooleanField(default=True)
    app_secret = _secret()
    # Sent in an HTTP header: visible ASCII only (Meta's tokens are), refused before any call.
    access_token = serializers.RegexField(
        r"^[!-~]*$",
        required=False,
        allow_null=True,
        max_length=1024,
        write_only=True,
        help_text=WRITE_ONLY_HELP,
        error_messages={"invalid": "Visible ASCII characters only, no spaces."},
    )
    verify_token = _secret()


class ChannelOutput(serializers.ModelSerializer[Channel]):
    has_app_secret = serializers.SerializerMethodField()
    has_access_token = serializers.SerializerMethodField()
    has_verify_token = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "name",
            "phone_number_id",
            "display_phone_number",
            "waba_id",
            "send_rate",
            "messaging_limit",
            "quality_event",
            "quality_changed_at",
            "is_active",
            "health",
            "health_detail",
            "last_webhook_at",
            "has_app_secret",
            "has_access_token",
            "has_verify_token",
            "created_at",
        ]

    def get_has_app_secret(self, channel: Channel) -> bool:
        return bool(channel.app_secret)

    def get_has_access_token(self, channel: Channel) -> bool:
        return bool(channel.access_token)

    def get_has_verify_token(self, channel: Channel) -> bool:
        return bool(channel.verify_token)


WEB_STATES = [
    "starting",
    "qr",
    "syncing",
    "connected",
    "disconnected",
    "logged_out",
    "conflict",
    "blocked",
    "outdated",
    "stopped",
]


class WebSessionStatusOutput(serializers.Serializer[Any]):
    state = serializers.ChoiceField(
        choices=WEB_STATES, help_text="conflict: opened elsewhere; outdated: WhatsApp Web changed version."
    )
    detail = serializers.CharField()
    state_changed_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField(help_text="No heartbeat from worker-web for WHATSAPP_WEB_STALE_SECONDS.")
    whatsapp_version = serializers.CharField()
    reconnects = serializers.IntegerField(help_text="Browser restarts after a crash or a lost page.")


class ChannelStatusOutput(serializers.Serializer[ChannelStatus]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    display_phone_number = serializers.CharField()
    kind = serializers.ChoiceField(choices=Channel.Kind.choices)
    is_active = serializers.BooleanField()
    health = serializers.ChoiceField(choices=Channel.Health.choices)
    health_detail = serializers.CharField()
    last_webhook_at = serializers.DateTimeField(allow_null=True)
    queue_depth = serializers.IntegerField(
        help_text="Outbound messages pending, waiting to retry or in flight."
    )
    sent_24h = serializers.IntegerField(help_text="Of the outbound messages of the last 24 h, those sent.")
    failed_24h = serializers.IntegerField(
        help_text="Of the outbound messages of the last 24 h, those failed."
    )
    error_rate = serializers.FloatField(help_text="failed / (sent + failed); 0 when there were none.")
    inbound_backlog = serializers.IntegerField(help_text="Customer messages stored but not processed yet.")
    inbound_set_aside_24h = serializers.IntegerField(
        help_text="Customer messages of the last 24 h set aside after failing INBOUND_MAX_ATTEMPTS times."
    )
    graph_circuit = serializers.ChoiceField(
        choices=list(STATES),
        help_text="The Graph API circuit breaker: open means calls are paused after repeated server errors.",
    )
    web_session = WebSessionStatusOutput(
        allow_null=True, help_text="WhatsApp Web channels: the browser session (null for other kinds)."
    )


class WhatsAppStatusOutput(serializers.Serializer[dict[str, Any]]):
    generated_at = serializers.DateTimeField()
    channels = ChannelStatusOutput(many=True)
