from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from apps.conversations import selectors
from apps.conversations.models import (
    INBOUND_SET_ASIDE,
    CannedReply,
    Contact,
    Conversation,
    ConversationSettings,
    InternalNote,
    Message,
    SendAttempt,
)
from apps.conversations.services import contacts, inbound, outbound
from chatbot.exceptions import Conflict


@admin.register(ConversationSettings)
class ConversationSettingsAdmin(admin.ModelAdmin[ConversationSettings]):
    list_display = ["workspace", "takeover_idle_minutes", "max_send_attempts", "recipient_interval_seconds"]
    autocomplete_fields = ["workspace"]


class ContactForm(forms.ModelForm[Contact]):
    class Meta:
        model = Contact
        fields = [
            "workspace",
            "wa_id",
            "bsuid",
            "name",
            "language",
            "tags",
            "attributes",
            "notes",
            "opted_out",
        ]

    def clean_wa_id(self) -> str:
        value: str = self.cleaned_data["wa_id"]
        try:
            return contacts.normalize_wa_id(value) if value else ""
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_tags(self) -> list[str]:
        value = self.cleaned_data["tags"] or []
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise forms.ValidationError('A list of words, e.g. ["vip", "madrid"].')
        try:
            return contacts.normalize_tags(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_attributes(self) -> dict[str, Any]:
        value = self.cleaned_data["attributes"] or {}
        if not isinstance(value, dict):
            raise forms.ValidationError('An object, e.g. {"city": "Madrid", "points": 120}.')
        try:
            return contacts.normalize_attributes(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    form = ContactForm
    list_display = ["__str__", "workspace", "wa_id", "bsuid", "language", "opted_out", "created_at"]
    list_filter = ["opted_out", "opt_out_source", "language", "workspace"]
    search_fields = ["name", "profile_name", "wa_id", "bsuid"]
    readonly_fields = [
        "profile_name",
        "opted_out_at",
        "opt_out_source",
        "consent_history",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Consent history")
    def consent_history(self, contact: Contact) -> str:
        """Evidence, shown and never edited here (a change goes through the opt-out field)."""
        records = contact.consent_records.order_by("-at")[:20] if contact.pk else []
        return (
            "; ".join(
                f"{r.at:%Y-%m-%d %H:%M} {r.kind} {'in' if r.opted_in else 'out'} ({r.source})"
                for r in records
            )
            or "-"
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> list[str]:
        return [*self.readonly_fields, "workspace"] if obj else list(self.readonly_fields)

    def save_model(
        self, request: HttpRequest, obj: Contact, form: forms.ModelForm[Contact], change: bool
    ) -> None:
        # Through the services, so an opt-out set here is recorded with its source and time.
        data: dict[str, Any] = {field: form.cleaned_data[field] for field in contacts.EDITABLE}
        if change:
            contacts.contact_update(contact=Contact.objects.get(pk=obj.pk), data=data)
        else:
            created = contacts.contact_create(workspace=form.cleaned_data["workspace"], **data)
            obj.pk, obj.created_at = created.pk, created.created_at

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        contacts.contact_delete(contact=obj, actor_id=request.user.pk)  # audited, as in the API

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> None:
        for contact in queryset:
            contacts.contact_delete(contact=contact, actor_id=request.user.pk)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin[Conversation]):
    """To look at; staff act on conversations from the inbox, where the services keep the rules."""

    list_display = [
        "__str__",
        "workspace",
        "channel",
        "status",
        "assignee",
        "unread_count",
        "last_message_at",
    ]
    list_filter = ["status", "workspace", "channel"]
    search_fields = ["contact__name", "contact__profile_name", "contact__wa_id"]
    list_select_related = ["contact", "workspace", "channel", "assignee"]
    readonly_fields = [
        "workspace",
        "channel",
        "contact",
        "status",
        "assignee",
        "last_inbound_at",
        "last_message_at",
        "human_activity_at",
        "unread_count",
        "created_at",
        "closed_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SendAttemptInline(admin.TabularInline[SendAttempt, Message]):
    """Each send of an outbound message, oldest first; written by the sender only."""

    model = SendAttempt
    fields = ("number", "outcome", "started_at", "finished_at", "reason", "error_code", "detail", "wamid")
    readonly_fields = fields
    ordering = ["number"]
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False


class _FixedValues(admin.SimpleListFilter):
    """A filter over values known in advance: Django's filter for a field without choices lists its values
    with a DISTINCT over every message (seconds at a million rows)."""

    values: tuple[tuple[str, str], ...] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return self.values

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset


class MessageTypeFilter(_FixedValues):
    title = "type"
    parameter_name = "type"
    values = tuple(
        (kind, kind)
        for kind in (
            "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
            "interactive", "button", "reaction", "order", "template", "system", "unsupported",
        )
    )  # fmt: skip


class FailureReasonFilter(_FixedValues):
    title = "failure reason"
    parameter_name = "failure_reason"
    values = ((INBOUND_SET_ASIDE, "set aside (processing failed)"),)


class EstimatedCountPaginator(Paginator):  # type: ignore[type-arg]
    """The whole table's size from PostgreSQL's statistics instead of a COUNT(*) over every message
    (the admin's unfiltered list); a filtered or searched list is counted exactly."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.where:
            connection = connections[queryset.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                        [queryset.model._meta.db_table],
                    )
                    row = cursor.fetchone()
                if row and row[0] > 10_000:  # small tables: the exact count is cheap and never stale
                    return int(row[0])
        return super().count


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    inlines = [SendAttemptInline]
    list_display = [
        "id",
        "workspace",
        "direction",
        "author",
        "type",
        "send_state",
        "status",
        "attempts",
        "reason",
        "created_at",
    ]
    list_filter = [
        "send_state",
        "status",
        "direction",
        FailureReasonFilter,
        "author",
        MessageTypeFilter,
        "workspace",
    ]
    search_fields = ["wamid", "body"]
    list_select_related = ["workspace"]
    # No date_hierarchy: its year and month links are DISTINCTs over every message. The count of a
    # filtered list is the paginator's; the unfiltered one is estimated (see EstimatedCountPaginator).
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["cancel_sending", "retry_now", "reprocess"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return selectors.with_last_send(super().get_queryset(request))  # the reason, no query per row

    @admin.display(description="failure reason")
    def reason(self, message: Message) -> str:
        return message.failure_reason_shown

    # To look at: the queue's state machine is moved by its services only (see the actions).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Message], act: Any, done: str) -> None:
        moved = refused = 0
        for message in queryset:
            try:
                act(message=message)
                moved += 1
            except Conflict:
                refused += 1
        self.message_user(request, f"{moved} {done}.")
        if refused:
            self.message_user(request, f"{refused} not in a state that allows it.", level=messages.WARNING)

    @admin.action(description="Cancel sending (pending or waiting to retry)")
    def cancel_sending(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._each(request, queryset, outbound.message_cancel, "cancelled")

    @admin.action(description="Retry now (failed or waiting to retry)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._each(request, queryset, outbound.message_retry_now, "queued again")

    @admin.action(description="Process again (customer messages set aside after failing)")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        self._each(request, queryset, inbound.inbound_reprocess, "queued for processing")


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin[CannedReply]):
    list_display = ("title", "workspace", "created_at")
    list_filter = ("workspace",)
    search_fields = ("title", "body")


@admin.register(InternalNote)
class InternalNoteAdmin(admin.ModelAdmin[InternalNote]):
    """Read here, written from the inbox (so each note has its author and its live event)."""

    list_display = ("conversation", "author", "created_at")
    list_select_related = ("conversation__contact", "author")
    search_fields = ("body",)
    raw_id_fields = ("conversation",)
    readonly_fields = ("workspace", "conversation", "author", "body", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
