from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.assistant.models import BusinessProfile, KnowledgeEntry
from apps.assistant.services import DAYS, ImportReport, ImportRowError
from apps.assistant.types import Passage
from chatbot.openapi import NOT_BLANK, TIME_ZONE, input_schema
from chatbot.serializers import JSONInput, QueryInput

_LANGUAGE_HELP = "Two-letter code (es, en, ...); empty when unknown."
_TIME = {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}
# What services.opening_hours_validate takes, except that a range must end after it starts and the
# ranges of a day must not overlap.
OPENING_HOURS_SCHEMA = {
    "properties": {
        day: {"type": "array", "items": {"type": "array", "items": _TIME, "minItems": 2, "maxItems": 2}}
        for day in DAYS
    },
    "additionalProperties": False,
}
_NOT_BLANK = {"pattern": NOT_BLANK}  # services refuse content that is whitespace only


def opening_hours_field(*, required: bool = True) -> serializers.DictField:
    """`{"mon": [["09:00", "14:00"], ["16:00", "20:00"]], ..., "sun": []}`."""
    time_range = serializers.ListField(
        child=serializers.CharField(max_length=5), min_length=2, max_length=2, help_text='["HH:MM", "HH:MM"]'
    )
    return serializers.DictField(
        child=serializers.ListField(child=time_range),
        help_text=f"Days {', '.join(DAYS)}: lists of time ranges; a day left out is closed.",
        required=required,
    )


class KnowledgeKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=KnowledgeEntry.Kind.choices, **kwargs)


# --- profile ------------------------------------------------------------------------------------
class BusinessProfileOutput(serializers.ModelSerializer[BusinessProfile]):
    languages = serializers.ListField(child=serializers.CharField())
    opening_hours = opening_hours_field()

    class Meta:
        model = BusinessProfile
        fields = [
            "name",
            "description",
            "tone",
            "languages",
            "opening_hours",
            "timezone",
            "address",
            "handoff_policy",
            "custom_instructions",
            "disclosure_text",
            "version",
            "knowledge_version",
            "updated_at",
        ]


@input_schema(
    fields={
        "timezone": TIME_ZONE,
        "languages": {"items": {"pattern": r"^[A-Za-z]{2}$"}},
        "opening_hours": OPENING_HOURS_SCHEMA,
    }
)
class BusinessProfileInput(JSONInput):
    """Fields left out keep their value."""

    name = serializers.CharField(max_length=160, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    tone = serializers.CharField(max_length=255, required=False, allow_blank=True)
    languages = serializers.ListField(
        child=serializers.CharField(max_length=8),
        required=False,
        max_length=10,
        help_text='e.g. ["es", "en"].',
    )
    opening_hours = opening_hours_field(required=False)
    timezone = serializers.CharField(
        max_length=64, required=False, help_text="IANA name, e.g. Europe/Madrid."
    )
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)
    handoff_policy = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    custom_instructions = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    disclosure_text = serializers.CharField(required=False, allow_blank=True, max_length=2000)


# --- knowledge ----------------------------------------------------------------------------------
class KnowledgeFilter(QueryInput):
    kind = KnowledgeKindField(required=False)
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Text in the title or content."
    )


class KnowledgeEntryOutput(serializers.ModelSerializer[KnowledgeEntry]):
    kind = KnowledgeKindField()
    chunk_count = serializers.IntegerField(help_text="Retrievable passages: 1 for an FAQ.")

    class Meta:
        model = KnowledgeEntry
        fields = [
            "id",
            "kind",
            "title",
            "content",
            "language",
            "source",
            "is_active",
            "chunk_count",
            "created_at",
            "updated_at",
        ]


@input_schema(fields={"content": _NOT_BLANK})
class KnowledgeEntryInput(JSONInput):
    kind = KnowledgeKindField(default=KnowledgeEntry.Kind.FAQ)
    title = serializers.CharField(max_length=500, help_text="The question (FAQ) or the document's title.")
    content = serializers.CharField(
        max_length=200_000, trim_whitespace=False, help_text="The answer (FAQ) or the document's text."
    )
    language = serializers.RegexField(
        r"^[a-z]{2}$", required=False, allow_blank=True, default="", help_text=_LANGUAGE_HELP
    )
    # A field, not Field.source: DRF's metaclass moves declared fields off the class.
    source = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    is_active = serializers.BooleanField(default=True)


@input_schema(fields={"content": _NOT_BLANK})
class KnowledgeEntryUpdateInput(JSONInput):
    """Fields left out keep their value."""

    kind = KnowledgeKindField(required=False)
    title = serializers.CharField(max_length=500, required=False)
    content = serializers.CharField(max_length=200_000, trim_whitespace=False, required=False)
    language = serializers.RegexField(
        r"^[a-z]{2}$", required=False, allow_blank=True, help_text=_LANGUAGE_HELP
    )
    source = serializers.CharField(max_length=255, required=False, allow_blank=True)  # type: ignore[assignment]
    is_active = serializers.BooleanField(required=False)


class KnowledgeImportInput(serializers.Serializer[None]):  # input only
    file = serializers.FileField(
        help_text=(
            "At most 5 MB. .csv: question,answer[,language] columns, one FAQ a row. .md: each # or ## "
            "heading with its section is a document; Q:/A: pairs are FAQs. .txt: one document."
        )
    )


class KnowledgeImportErrorOutput(serializers.Serializer[ImportRowError]):
    row = serializers.IntegerField(help_text="CSV: spreadsheet row (the header is row 1). Otherwise: line.")
    message = serializers.CharField()


class KnowledgeImportOutput(serializers.Serializer[ImportReport]):
    format = serializers.ChoiceField(choices=["csv", "markdown", "text"])
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="FAQs whose question existed: their answer was replaced.")
    replaced = serializers.IntegerField(help_text="Documents of an earlier import of this file, removed.")
    # A field, not Serializer.errors: DRF's metaclass moves declared fields off the class.
    errors = KnowledgeImportErrorOutput(many=True)  # type: ignore[assignment]
    knowledge_version = serializers.IntegerField()


class KnowledgeSearchFilter(QueryInput):
    q = serializers.CharField(max_length=1000, help_text="A question as a customer would write it.")
    k = serializers.IntegerField(min_value=1, max_value=20, default=4, help_text="How many passages.")


class PassageOutput(serializers.Serializer[Passage]):
    entry_id = serializers.IntegerField()
    kind = KnowledgeKindField()
    title = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="BM25 score; comparable only within one search.")


class KnowledgeSearchOutput(serializers.Serializer[dict[str, Any]]):
    query = serializers.CharField()
    passages = PassageOutput(many=True)
    confident_entry_id = serializers.IntegerField(
        allow_null=True,
        help_text="The FAQ the offline responder would answer with on its own, if any.",
    )
