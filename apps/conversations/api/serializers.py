from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import User
from apps.conversations import selectors
from apps.conversations.models import CannedReply, Contact, Conversation, InternalNote, Message
from apps.conversations.services.contacts import (
    ATTRIBUTE_NAME_PATTERN,
    MAX_ATTRIBUTE_NAME,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    ImportReport,
    normalize_attributes,
    normalize_tags,
    normalize_wa_id,
)
from apps.conversations.services.desk import ATTACHMENT_KINDS, CAPTION_LIMIT, LINK_LIMIT
from chatbot.openapi import NOT_BLANK, input_schema
from chatbot.serializers import JSONInput, QueryInput

REPLY_MAX_LENGTH = 4096 * 4
# Ids are BigAutoField: a larger number matches no row, and the database cannot even compare it.
MAX_ID = 2**63 - 1


# --- conversations --------------------------------------------------------------------------
class ConversationFilter(QueryInput):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    assignee = serializers.RegexField(
        r"^(me|none|\d{1,18})$", required=False, help_text='A user id, "me" or "none" (unassigned).'
    )
    channel = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Contact name, wa_id or message text."
    )


class UserBrief(serializers.ModelSerializer[User]):
    name = serializers.CharField(source="get_full_name")

    class Meta:
        model = User
        fields = ["id", "username", "name"]


class ContactBrief(serializers.ModelSerializer[Contact]):
    display_name = serializers.CharField()

    class Meta:
        model = Contact
        fields = ["id", "display_name", "wa_id", "opted_out"]


class ConversationOutput(serializers.ModelSerializer[Conversation]):
    contact = ContactBrief()
    assignee = UserBrief(allow_null=True)
    window_open = serializers.SerializerMethodField(help_text="The customer wrote within the last 24 hours.")

    class Meta:
        model = Conversation
        fields = [
            "id",
            "channel",
            "contact",
            "status",
            "assignee",
            "unread_count",
            "last_inbound_at",
            "last_message_at",
            "window_open",
            "created_at",
            "closed_at",
        ]

    def get_window_open(self, conversation: Conversation) -> bool:
        return selectors.window_open(conversation=conversation)


# Outbound rows: from the last send attempt (Message.failure_reason_shown); the same keys as before.
def _failure_reason() -> serializers.CharField:
    return serializers.CharField(source="failure_reason_shown", max_length=64)


def _last_error() -> serializers.CharField:
    return serializers.CharField(source="last_error_shown")


class ReactionOutput(serializers.Serializer[dict[str, Any]]):
    emoji = serializers.CharField()
    author = serializers.ChoiceField(choices=Message.Author.choices, help_text="Who reacted.")
    reacted_at = serializers.DateTimeField()


class MessageOutput(serializers.ModelSerializer[Message]):
    failure_reason = _failure_reason()
    reactions = serializers.SerializerMethodField(
        help_text="The reactions shown on this message: the customer's current one (WhatsApp keeps one "
        "per person; a removed reaction is gone). The reaction messages themselves are not listed when "
        "the message they react to is in this conversation."
    )
    reply_to_wamid = serializers.CharField(
        help_text='The wamid of the message this one answers or, for a "reaction", reacts to ("" for none).'
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "author",
            "author_user",
            "type",
            "body",
            "status",
            "send_state",
            "error_code",
            "error_title",
            "failure_reason",
            "created_at",
            "sent_at",
            "wamid",
            "reply_to_wamid",
            "reactions",
        ]

    @extend_schema_field(ReactionOutput(many=True))
    def get_reactions(self, message: Message) -> list[dict[str, Any]]:
        emoji, at = message.reaction_shown
        if not emoji:
            return []
        reaction = {"emoji": emoji, "author": Message.Author.CUSTOMER, "reacted_at": at}
        return [ReactionOutput(reaction).data]


class ReplyInput(JSONInput):
    body = serializers.CharField(min_length=1, max_length=REPLY_MAX_LENGTH)


# --- working a conversation: assigning, notes, files, canned replies -------------------------
class AssignInput(JSONInput):
    assignee = serializers.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        allow_null=True,
        help_text="A member's user id (agent or above); null: nobody. Assigning does not take over.",
    )


class NoteInput(JSONInput):
    body = serializers.CharField(max_length=InternalNote.BODY_LIMIT)


class NoteOutput(serializers.ModelSerializer[InternalNote]):
    author = UserBrief(allow_null=True)

    class Meta:
        model = InternalNote
        fields = ["id", "author", "body", "created_at"]


@input_schema(fields={"link": {"pattern": r"^https://\S+$"}})
class AttachmentInput(JSONInput):
    kind = serializers.ChoiceField(choices=ATTACHMENT_KINDS)
    link = serializers.CharField(
        max_length=LINK_LIMIT, help_text="An https URL WhatsApp downloads the file from."
    )
    caption = serializers.CharField(
        required=False, allow_blank=True, max_length=CAPTION_LIMIT, help_text="Not sent with audio."
    )


class CannedReplyFilter(QueryInput):
    q = serializers.CharField(required=False, allow_blank=True, max_length=100, help_text="Title or text.")


class CannedReplyInput(JSONInput):
    title = serializers.CharField(max_length=CannedReply.TITLE_LIMIT)
    body = serializers.CharField(
        max_length=CannedReply.BODY_LIMIT,
        help_text="{{name}}, {{first_name}}, {{number}}, {{agent}} and the contact's attributes are filled in.",
    )


class CannedReplyOutput(serializers.ModelSerializer[CannedReply]):
    class Meta:
        model = CannedReply
        fields = ["id", "title", "body", "created_at"]


# --- contacts -------------------------------------------------------------------------------
class ContactFilter(QueryInput):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tag = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TAG_LENGTH)
    opted_out = serializers.BooleanField(required=False, allow_null=True, default=None)


class ContactOutput(serializers.ModelSerializer[Contact]):
    tags = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Contact
        fields = [
            "id",
            "wa_id",
            "bsuid",
            "name",
            "profile_name",
            "display_name",
            "language",
            "tags",
            "attributes",
            "notes",
            "opted_out",
            "opted_out_at",
            "created_at",
        ]


@input_schema(
    fields={
        "wa_id": {"pattern": r"^(\+?[0-9]{7,15})?$"},
        # services.contacts.normalize_attributes: named scalars (null or "" removes one). The names'
        # pattern is in the description: OpenAPI 3.0 has no rule for an object's keys (propertyNames).
        "attributes": {
            "maxProperties": MAX_ATTRIBUTES,
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_ATTRIBUTE_VALUE, "nullable": True},
                    {"type": "number"},
                    {"type": "boolean"},
                ]
            },
        },
    },
    # A new contact needs a wa_id or a bsuid (services.contacts.contact_create).
    whole={
        "anyOf": [
            {"required": ["wa_id"], "properties": {"wa_id": {"pattern": "[0-9]"}}},
            {"required": ["bsuid"], "properties": {"bsuid": {"pattern": NOT_BLANK}}},
        ]
    },
)
class ContactInput(JSONInput):
    """Also used for PATCH (partially): absent fields are left as they are."""

    wa_id = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="7 to 15 digits; a leading + is stripped."
    )
    bsuid = serializers.CharField(required=False, allow_blank=True, max_length=128)
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    language = serializers.CharField(required=False, allow_blank=True, max_length=8)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH), required=False, max_length=MAX_TAGS
    )
    attributes = serializers.DictField(
        required=False,
        help_text=f"Named values: text (up to {MAX_ATTRIBUTE_VALUE}), number or true/false; null or empty "
        f"removes one. Names: lowercase letters, digits and single _, from a letter, up to "
        f"{MAX_ATTRIBUTE_NAME} (`{ATTRIBUTE_NAME_PATTERN}`).",
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    opted_out = serializers.BooleanField(required=False)

    def validate_wa_id(self, value: str) -> str:
        if not value:
            return ""
        try:
            return normalize_wa_id(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_tags(self, value: list[str]) -> list[str]:
        try:
            return normalize_tags(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_attributes(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return normalize_attributes(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not self.partial and not attrs.get("wa_id") and not attrs.get("bsuid"):
            raise serializers.ValidationError("A contact needs a wa_id or a bsuid.")
        return attrs


class ContactImportInput(serializers.Serializer[None]):
    file = serializers.FileField(help_text="CSV: wa_id,name,language,tags,opted_out (tags split by | or ;).")


class ImportErrorOutput(serializers.Serializer[dict[str, Any]]):
    row = serializers.IntegerField(help_text="Spreadsheet row number; the header is row 1.")
    error = serializers.CharField()


class ContactImportOutput(serializers.Serializer[ImportReport]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    # A field, not Serializer.errors: DRF's metaclass moves declared fields off the class.
    errors = ImportErrorOutput(many=True)  # type: ignore[assignment]


# --- queue ----------------------------------------------------------------------------------
class QueueFilter(QueryInput):
    state = serializers.ChoiceField(
        choices=[choice for choice in Message.SendState.choices if choice[0]], required=False
    )
    channel = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    conversation = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class QueueItemOutput(serializers.ModelSerializer[Message]):
    # The same choices as MessageOutput.status: one enum in the schema (ENUM_NAME_OVERRIDES).
    status = serializers.ChoiceField(
        choices=Message.Status.choices, help_text="Delivery status as WhatsApp reports it (as in a message)."
    )
    failure_reason = _failure_reason()
    last_error = _last_error()

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "channel",
            "contact",
            "author",
            "type",
            "body",
            "send_state",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "failure_reason",
            "last_error",
            "error_code",
            "error_title",
            "created_at",
            "sent_at",
            "wamid",
        ]
