from __future__ import annotations

from datetime import date
from typing import Any

from rest_framework import serializers

from apps.analytics.export import TABLES
from chatbot.serializers import QueryInput

MAX_ID = 2**63 - 1
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


class PeriodFilter(QueryInput):
    start = serializers.DateField(
        required=False,
        help_text="First day (YYYY-MM-DD, in the workspace's time zone, 2000 to 2100). Default: 29 days "
        "before `end`.",
    )
    end = serializers.DateField(
        required=False,
        help_text="Last day, included. Default: today, or 29 days after `start`. At most 366 days in all, "
        "not before `start`.",
    )
    channel = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Only this channel of the workspace."
    )

    def _in_bounds(self, value: date) -> date:
        if not EARLIEST <= value <= LATEST:
            raise serializers.ValidationError("Between 2000-01-01 and 2100-12-31.")
        return value

    def validate_start(self, value: date) -> date:
        return self._in_bounds(value)

    def validate_end(self, value: date) -> date:
        return self._in_bounds(value)


class AnalyticsPeriodOutput(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    timezone = serializers.CharField()
    channel = serializers.IntegerField(allow_null=True)


class _AnalyticsWithPeriod(serializers.Serializer[Any]):
    period = AnalyticsPeriodOutput()


class AnalyticsMessagesDayOutput(serializers.Serializer[Any]):
    day = serializers.DateField()
    inbound = serializers.IntegerField()
    outbound = serializers.IntegerField()


class AnalyticsMessagesHourOutput(serializers.Serializer[Any]):
    hour = serializers.IntegerField(min_value=0, max_value=23)
    inbound = serializers.IntegerField()
    outbound = serializers.IntegerField()


class AnalyticsMessagesOutput(_AnalyticsWithPeriod):
    inbound = serializers.IntegerField()
    outbound = serializers.IntegerField()
    by_day = AnalyticsMessagesDayOutput(many=True)
    by_hour = AnalyticsMessagesHourOutput(many=True, help_text="Hours of the day 0-23, local time.")


class AnalyticsConversationsDayOutput(serializers.Serializer[Any]):
    day = serializers.DateField()
    opened = serializers.IntegerField()
    handed = serializers.IntegerField(help_text="Handed to a person for the first time.")
    closed = serializers.IntegerField()


class AnalyticsConversationsOutput(_AnalyticsWithPeriod):
    opened = serializers.IntegerField()
    handed = serializers.IntegerField()
    closed = serializers.IntegerField()
    by_day = AnalyticsConversationsDayOutput(many=True)


class AnalyticsDurationOutput(serializers.Serializer[Any]):
    measure = serializers.ChoiceField(choices=["bot_first_response", "people_first_response", "resolution"])
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)
    average_seconds = serializers.FloatField(allow_null=True)


class AnalyticsResponseTimesOutput(_AnalyticsWithPeriod):
    rows = AnalyticsDurationOutput(many=True)
    customer_conversations = serializers.IntegerField(help_text="Opened in the range by a customer.")
    answered_by_bot_alone = serializers.IntegerField()
    bot_alone_share = serializers.FloatField(allow_null=True)


class AnalyticsFunnelStageOutput(serializers.Serializer[Any]):
    stage = serializers.ChoiceField(choices=["sent", "delivered", "read", "failed"])
    count = serializers.IntegerField()


class AnalyticsFailureOutput(serializers.Serializer[Any]):
    error_code = serializers.IntegerField(allow_null=True)
    error_title = serializers.CharField(allow_blank=True)
    count = serializers.IntegerField()


class AnalyticsDeliveryOutput(_AnalyticsWithPeriod):
    outbound = serializers.IntegerField()
    not_yet_sent = serializers.IntegerField(help_text="Queued or accepted, no status from WhatsApp yet.")
    funnel = AnalyticsFunnelStageOutput(many=True)
    failures = AnalyticsFailureOutput(many=True, help_text="Failed messages by Meta's error code.")


class AnalyticsLLMRowOutput(serializers.Serializer[Any]):
    provider = serializers.CharField()
    model = serializers.CharField(allow_blank=True)
    replies = serializers.IntegerField()
    cache_hits = serializers.IntegerField()
    fallbacks = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, coerce_to_string=True)
    latency_avg_ms = serializers.IntegerField()
    latency_p50_ms = serializers.IntegerField()
    latency_p90_ms = serializers.IntegerField()


class AnalyticsLLMOutput(_AnalyticsWithPeriod):
    rows = AnalyticsLLMRowOutput(many=True)
    replies = serializers.IntegerField()
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, coerce_to_string=True)
    cache_hit_rate = serializers.FloatField(allow_null=True)
    fallback_rate = serializers.FloatField(allow_null=True)
    all_failed_rate = serializers.FloatField(allow_null=True)


class AnalyticsSeverityRowOutput(serializers.Serializer[Any]):
    severity = serializers.CharField()
    alerts = serializers.IntegerField()
    open = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    resolved = serializers.IntegerField()


class AnalyticsAlertsOutput(_AnalyticsWithPeriod):
    rows = AnalyticsSeverityRowOutput(many=True)
    alerts = serializers.IntegerField()


class AnalyticsOptOutDayOutput(serializers.Serializer[Any]):
    day = serializers.DateField()
    opt_outs = serializers.IntegerField()


class AnalyticsOptOutSourceOutput(serializers.Serializer[Any]):
    source = serializers.CharField()  # type: ignore[assignment]  # the field, not DRF's `source` argument
    opt_outs = serializers.IntegerField()


class AnalyticsOptOutsOutput(_AnalyticsWithPeriod):
    opt_outs = serializers.IntegerField()
    by_day = AnalyticsOptOutDayOutput(many=True)
    by_source = AnalyticsOptOutSourceOutput(many=True)


class AnalyticsChannelOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)


class AnalyticsIndexOutput(_AnalyticsWithPeriod):
    channels = AnalyticsChannelOutput(many=True)
    tables = serializers.ListField(
        child=serializers.ChoiceField(choices=list(TABLES)), help_text="CSV: /api/analytics/export/{table}."
    )
    planned = serializers.ListField(
        child=serializers.CharField(), help_text="Figures not computed yet (campaign funnels)."
    )


class AnalyticsCampaignRow(serializers.Serializer[Any]):
    campaign = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    total = serializers.IntegerField()
    skipped = serializers.IntegerField()
    sent = serializers.IntegerField(help_text="Accepted by WhatsApp (delivered and read ones included).")
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    replied = serializers.IntegerField(help_text="The customer wrote after the campaign's message.")
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class AnalyticsCampaignsOutput(_AnalyticsWithPeriod):
    rows = AnalyticsCampaignRow(many=True)
