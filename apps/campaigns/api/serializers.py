from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.campaigns.models import AudienceSettings, Campaign, ContactImport, Recipient, Segment, Template
from apps.campaigns.selectors import RECIPIENT_STAGES
from apps.campaigns.services.audiences import REGIONS
from apps.campaigns.services.inbox import media_link_clean
from apps.campaigns.services.runner import VARIABLE_SOURCES
from apps.campaigns.services.templates import LANGUAGE, NAME
from apps.conversations.models import ConsentRecord
from apps.conversations.services.contacts import MAX_TAG_LENGTH
from chatbot.openapi import Component, input_schema
from chatbot.serializers import JSONInput, QueryInput

MAX_ID = 2**63 - 1


# --- templates ----------------------------------------------------------------------------------
class TemplateFilter(QueryInput):
    status = serializers.ChoiceField(choices=Template.Status.choices, required=False)
    channel = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class TemplateOutput(serializers.ModelSerializer[Template]):
    components = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = Template
        fields = [
            "id",
            "channel",
            "waba_id",
            "meta_id",
            "name",
            "language",
            "category",
            "status",
            "quality",
            "components",
            "variable_count",
            "rejected_reason",
            "status_changed_at",
            "synced_at",
            "created_at",
        ]


class TemplateInput(JSONInput):
    """A new template, submitted to Meta for review."""

    channel = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="The number whose account submits it."
    )
    # Untrimmed: the schema's pattern holds for the value as sent.
    name = serializers.RegexField(
        f"^{NAME.pattern}$",
        max_length=512,
        trim_whitespace=False,
        help_text="Lowercase letters, digits and _.",
    )
    language = serializers.RegexField(
        f"^{LANGUAGE.pattern}$", max_length=16, trim_whitespace=False, help_text="es, en_US, es_MX, ..."
    )
    category = serializers.ChoiceField(choices=Template.Category.choices)
    components = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=4,
        help_text="Meta's components: one BODY (variables {{1}}..{{n}} with example.body_text), optional "
        "HEADER, FOOTER, BUTTONS.",
    )


class TemplateSyncInput(JSONInput):
    """The number whose business account's templates are read from Meta."""

    channel = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class TemplateSyncOutput(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    gone = serializers.IntegerField(help_text="No longer at Meta: kept here as DELETED.")


# --- segments -----------------------------------------------------------------------------------
# Every filter is named: a misspelt one would silently widen the audience, so any other key is refused.
@input_schema(whole={"additionalProperties": False}, partial={"additionalProperties": False})
class SegmentFilters(JSONInput):
    """Which contacts: each filter given must hold (an empty list or null means any)."""

    tags_any = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), required=False, max_length=30
    )
    tags_all = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), required=False, max_length=30
    )
    languages = serializers.ListField(
        child=serializers.CharField(max_length=8), required=False, max_length=30
    )
    opted_out = serializers.BooleanField(required=False, allow_null=True, default=None)
    channel_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, max_length=50
    )
    last_inbound_within_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    last_inbound_older_than_days = serializers.IntegerField(required=False, min_value=0, max_value=3650)
    attributes = serializers.DictField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="Attribute name: value (equal). A name no contact has matches nobody.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and (unknown := sorted(set(data) - set(self.fields))):
            raise serializers.ValidationError({key: ["Unknown filter."] for key in unknown})
        return super().to_internal_value(data)


class SegmentOutput(serializers.ModelSerializer[Segment]):
    filters = serializers.DictField()

    class Meta:
        model = Segment
        fields = ["id", "name", "filters", "created_at", "updated_at"]


class SegmentInput(JSONInput):
    name = serializers.CharField(max_length=120)
    filters = SegmentFilters()


class SegmentCountOutput(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    marketing_eligible = serializers.IntegerField(help_text="Of them, not opted out of marketing.")


# --- imports and consent ------------------------------------------------------------------------
REGION = Component("RegionEnum", {"type": "string", "enum": REGIONS, "description": "An ISO 3166 region."})


def _region(value: str) -> str:
    # Exactly as the schema's enum spells it (the services would also take "es" or " ES").
    if value not in REGIONS:
        raise serializers.ValidationError("Unknown region: use a two-letter code like ES or MX.")
    return value


@input_schema(fields={"region": REGION})
class BackgroundImportInput(serializers.Serializer[None]):
    file = serializers.FileField(
        help_text="CSV with a phone (or wa_id) column; optional name, language, tags (split by | or ;), "
        "opted_out; any other column is a contact attribute."
    )
    region = serializers.CharField(
        required=False,
        max_length=2,
        trim_whitespace=False,
        help_text="Region for numbers without +country code (default: workspace's).",
    )

    def validate_region(self, value: str) -> str:
        return _region(value)

    tags = serializers.CharField(
        required=False, max_length=400, help_text="Tags added to every contact (| or ;)."
    )


class ImportRowErrorOutput(serializers.Serializer[dict[str, Any]]):
    row = serializers.IntegerField(help_text="Spreadsheet row number; the header is row 1.")
    error = serializers.CharField()


class BackgroundImportOutput(serializers.ModelSerializer[ContactImport]):
    errors = ImportRowErrorOutput(many=True)  # type: ignore[assignment]

    class Meta:
        model = ContactImport
        fields = [
            "id",
            "filename",
            "region",
            "tags",
            "status",
            "total_rows",
            "processed_rows",
            "created_count",
            "updated_count",
            "error_count",
            "errors",
            "failure",
            "started_at",
            "finished_at",
            "created_at",
        ]


class ConsentOutput(serializers.ModelSerializer[ConsentRecord]):
    class Meta:
        model = ConsentRecord
        fields = ["id", "kind", "opted_in", "source", "at"]


class ConsentInput(JSONInput):
    kind = serializers.ChoiceField(choices=ConsentRecord.Kind.choices)
    opted_in = serializers.BooleanField()
    # Only the stubs object to a field named like Field.source; DRF allows it.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=[ConsentRecord.Source.STAFF, ConsentRecord.Source.API], default=ConsentRecord.Source.STAFF
    )


class AudienceSettingsOutput(serializers.ModelSerializer[AudienceSettings]):
    class Meta:
        model = AudienceSettings
        fields = ["default_region"]


@input_schema(fields={"default_region": REGION})
class AudienceSettingsInput(JSONInput):
    """Fields left out keep their value."""

    default_region = serializers.CharField(
        required=False, max_length=2, trim_whitespace=False, help_text="ISO 3166 region: ES, MX, US, ..."
    )

    def validate_default_region(self, value: str) -> str:
        return _region(value)


# --- inbox --------------------------------------------------------------------------------------
class TemplateSendInput(JSONInput):
    template = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    parameters = serializers.ListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False),
        required=False,
        default=list,
        max_length=100,
    )
    header_parameters = serializers.ListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False),
        required=False,
        default=list,
        max_length=1,
    )
    button_parameters = serializers.ListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False),
        required=False,
        default=list,
        max_length=2,
        help_text="The end of each URL button's link that has a variable, in the buttons' order.",
    )


class InteractiveSendInput(JSONInput):
    interactive = serializers.DictField(
        help_text="The Cloud API's interactive object: type button (1-3 reply buttons) or list (sections of rows)."
    )


# --- campaigns ----------------------------------------------------------------------------------
class CampaignVariable(JSONInput):
    """Where one {{n}} of the template's body takes its value, per recipient."""

    source = serializers.ChoiceField(  # type: ignore[assignment]  # a field, popped by the metaclass
        choices=[(s, s) for s in VARIABLE_SOURCES],
        help_text="name (the contact's name, else WhatsApp profile name), wa_id, language, attribute "
        "(the contact attribute `key`) or text (the same `default` for everyone).",
    )
    key = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    default = serializers.CharField(
        max_length=1024,
        required=False,
        allow_blank=True,
        default="",
        help_text="Used when the contact has no value; a recipient with neither is skipped.",
    )


class CampaignFilter(QueryInput):
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)


class CampaignInput(JSONInput):
    name = serializers.CharField(max_length=120)
    template = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    channel = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)
    segment = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="A saved audience; its filters are frozen when the campaign is scheduled.",
    )
    audience_filters = SegmentFilters(required=False, help_text="Used when no segment is given.")
    variables = serializers.ListField(child=CampaignVariable(), required=False, max_length=20)
    header_variables = serializers.ListField(
        child=CampaignVariable(),
        required=False,
        max_length=1,
        help_text="Where the {{1}} of a text header takes its value.",
    )
    button_variables = serializers.ListField(
        child=CampaignVariable(),
        required=False,
        max_length=2,
        help_text="Where the end of each URL button's link takes its value, in the buttons' order "
        "(percent-encoded per recipient).",
    )
    header_media_url = serializers.RegexField(
        r"^https://\S+$",
        max_length=1024,
        required=False,
        allow_blank=True,
        help_text="For a template whose header is an image, video or document: its public https link "
        "(an international host is stored in its punycode form, other non-ASCII characters percent-encoded).",
    )

    def validate_header_media_url(self, value: str) -> str:
        try:
            return media_link_clean(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class LocalDateTimeField(serializers.DateTimeField):
    """A time as written: one without an offset stays naive, for the workspace's time zone to read
    (DRF would read it in the server's)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        return value


class CampaignScheduleInput(JSONInput):
    scheduled_at = LocalDateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When to start; without an offset it is read in the workspace's time zone. Empty: now.",
    )
    recurrence = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="Repeat: cron `minute hour day-of-month month day-of-week` in the workspace's time zone, "
        "at most daily (e.g. `0 9 * * 1`: Mondays at 09:00). Each occurrence starts a copy of the campaign "
        "(its `parent` is this one), reading the segment anew.",
    )


class CampaignOutput(serializers.ModelSerializer[Campaign]):
    audience_filters = serializers.DictField()
    variables = serializers.ListField(child=serializers.DictField())
    header_variables = serializers.ListField(child=serializers.DictField())
    button_variables = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "template",
            "channel",
            "segment",
            "audience_filters",
            "variables",
            "header_variables",
            "button_variables",
            "header_media_url",
            "status",
            "scheduled_at",
            "started_at",
            "finished_at",
            "status_changed_at",
            "paused_reason",
            "failure",
            "fanned_out_at",
            "waiting_reason",
            "waiting_until",
            "recurrence",
            "parent",
            "occurrence",
            "created_at",
            "updated_at",
        ]


class FailureCount(serializers.Serializer[Any]):
    error_code = serializers.IntegerField(allow_null=True, help_text="Meta's error code.")
    count = serializers.IntegerField()


class CampaignFunnelOutput(serializers.Serializer[Any]):
    total = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Not handed to the sender yet.")
    skipped = serializers.IntegerField()
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())
    cancelled = serializers.IntegerField()
    queued = serializers.IntegerField(help_text="Handed to the sender (every stage below is a part of it).")
    in_queue = serializers.IntegerField(help_text="Not accepted by WhatsApp yet.")
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    read = serializers.IntegerField()
    replied = serializers.IntegerField()
    failed = serializers.IntegerField()
    failed_by_code = FailureCount(many=True)


class RecipientFilter(QueryInput):
    stage = serializers.ChoiceField(choices=[(s, s) for s in RECIPIENT_STAGES], required=False)


class RecipientOutput(serializers.ModelSerializer[Recipient]):
    contact_name = serializers.CharField(source="contact.display_name")
    wa_id = serializers.CharField(source="contact.wa_id")
    parameters = serializers.ListField(child=serializers.CharField())
    header_parameters = serializers.ListField(child=serializers.CharField())
    button_parameters = serializers.ListField(child=serializers.CharField())
    message_status = serializers.CharField(source="message.status", default=None, allow_null=True)
    error_code = serializers.IntegerField(source="message.error_code", default=None, allow_null=True)
    conversation = serializers.IntegerField(source="message.conversation_id", default=None, allow_null=True)
    replied = serializers.BooleanField()

    class Meta:
        model = Recipient
        fields = [
            "id",
            "contact",
            "contact_name",
            "wa_id",
            "state",
            "skip_reason",
            "parameters",
            "header_parameters",
            "button_parameters",
            "queued_at",
            "message_status",
            "error_code",
            "conversation",
            "replied",
        ]


class CampaignPreviewOutput(serializers.Serializer[Any]):
    contact = serializers.IntegerField()
    contact_name = serializers.CharField()
    parameters = serializers.ListField(child=serializers.CharField(), allow_null=True)
    text = serializers.CharField(help_text="What this customer would read; empty when skipped.")
    skip_reason = serializers.CharField(help_text="Why this customer would be skipped; empty when sent.")
