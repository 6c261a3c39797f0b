from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.assistant import services
from apps.assistant.models import (
    AssistantSettings,
    BusinessProfile,
    KnowledgeChunk,
    KnowledgeEntry,
    ModelPull,
    ProviderConfig,
    ReplyUsage,
)
from chatbot.exceptions import ValidationFailed


def _form_errors(exc: ValidationFailed, field: str) -> forms.ValidationError:
    details = exc.details.get(field) if isinstance(exc.details, dict) else None
    return forms.ValidationError(details or exc.message)


class BusinessProfileForm(forms.ModelForm[BusinessProfile]):
    class Meta:
        model = BusinessProfile
        fields = [
            "workspace",
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
        ]

    def clean_opening_hours(self) -> dict[str, list[list[str]]]:
        try:
            return services.opening_hours_validate(self.cleaned_data.get("opening_hours") or {})
        except ValidationFailed as exc:
            raise _form_errors(exc, "opening_hours") from exc

    def clean_timezone(self) -> str:
        try:
            return services.timezone_validate(self.cleaned_data.get("timezone"))
        except ValidationFailed as exc:
            raise _form_errors(exc, "timezone") from exc

    def clean_languages(self) -> list[str]:
        try:
            return services.languages_validate(self.cleaned_data.get("languages") or [])
        except ValidationFailed as exc:
            raise _form_errors(exc, "languages") from exc


@admin.register(BusinessProfile)
class BusinessProfileAdmin(admin.ModelAdmin[BusinessProfile]):
    form = BusinessProfileForm
    list_display = ["__str__", "workspace", "timezone", "version", "knowledge_version", "updated_at"]
    search_fields = ["name", "workspace__name"]
    readonly_fields = ["version", "knowledge_version", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: BusinessProfile | None = None) -> list[str]:
        return [*self.readonly_fields, "workspace"] if obj else list(self.readonly_fields)

    def save_model(
        self, request: HttpRequest, obj: BusinessProfile, form: forms.ModelForm[BusinessProfile], change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        fields = {
            name: form.cleaned_data[name] for name in form.changed_data if name in services.PROFILE_FIELDS
        }
        saved = services.profile_update(workspace_id=obj.workspace_id, **fields)
        obj.version, obj.updated_at = saved.version, saved.updated_at


class KnowledgeChunkInline(admin.TabularInline[KnowledgeChunk, KnowledgeEntry]):
    model = KnowledgeChunk
    fields = ["ordinal", "text"]
    readonly_fields = ["ordinal", "text"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: KnowledgeEntry | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: KnowledgeEntry | None = None) -> bool:
        return False


class KnowledgeEntryForm(forms.ModelForm[KnowledgeEntry]):
    class Meta:
        model = KnowledgeEntry
        fields = ["workspace", "kind", "title", "content", "language", "source", "is_active"]

    def clean_language(self) -> str:
        language = str(self.cleaned_data.get("language") or "").strip().lower()
        if language and not (len(language) == 2 and language.isascii() and language.isalpha()):
            raise forms.ValidationError("A two-letter code such as es or en, or empty.")
        return language


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin[KnowledgeEntry]):
    """Saved through the services, so chunks are rewritten and retrieval sees the change."""

    form = KnowledgeEntryForm
    list_display = ["title", "workspace", "kind", "language", "is_active", "source", "updated_at"]
    list_filter = ["kind", "is_active", "language", "workspace"]
    search_fields = ["title", "content", "source"]
    inlines = [KnowledgeChunkInline]

    def get_readonly_fields(self, request: HttpRequest, obj: KnowledgeEntry | None = None) -> list[str]:
        return ["workspace"] if obj else []

    def save_model(
        self, request: HttpRequest, obj: KnowledgeEntry, form: forms.ModelForm[KnowledgeEntry], change: bool
    ) -> None:
        services.knowledge_save(entry=obj)

    def delete_model(self, request: HttpRequest, obj: KnowledgeEntry) -> None:
        services.knowledge_delete(entry=obj, actor_id=request.user.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[KnowledgeEntry]) -> None:
        for entry in queryset:
            services.knowledge_delete(entry=entry, actor_id=request.user.pk)


@admin.register(AssistantSettings)
class AssistantSettingsAdmin(admin.ModelAdmin[AssistantSettings]):
    list_display = ["__str__", "workspace", "enabled", "fallback_order", "temperature", "max_tokens"]
    list_filter = ["enabled"]


class ProviderConfigForm(forms.ModelForm[ProviderConfig]):
    """The stored key never reaches the page: only a new one can be typed, or the old one cleared."""

    new_api_key = forms.CharField(
        label="New API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key.",
    )
    base_url = forms.URLField(required=False, assume_scheme="https", max_length=200)
    clear_api_key = forms.BooleanField(
        required=False, help_text="Remove the stored key (the environment's is used, if any)."
    )

    class Meta:
        model = ProviderConfig
        fields = ["workspace", "provider", "enabled", "model", "base_url"]

    def save(self, commit: bool = True) -> ProviderConfig:
        config: ProviderConfig = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            config.api_key = ""
        if new_key := self.cleaned_data.get("new_api_key"):
            config.api_key = new_key
        if commit:
            config.save()
        return config


@admin.register(ProviderConfig)
class ProviderConfigAdmin(admin.ModelAdmin[ProviderConfig]):
    form = ProviderConfigForm
    list_display = ["__str__", "workspace", "provider", "enabled", "model", "api_key_state"]
    list_filter = ["provider", "enabled"]
    readonly_fields = ["api_key_state"]
    fields = [
        "workspace",
        "provider",
        "enabled",
        "model",
        "base_url",
        "api_key_state",
        "new_api_key",
        "clear_api_key",
    ]

    @admin.display(description="API key")
    def api_key_state(self, config: ProviderConfig) -> str:
        return "set" if config.api_key else "not set"


@admin.register(ReplyUsage)
class ReplyUsageAdmin(admin.ModelAdmin[ReplyUsage]):
    list_display = ["created_at", "workspace", "provider", "model", "latency_ms", "cache_hit", "cost_usd"]
    list_filter = ["provider", "cache_hit"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ReplyUsage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ReplyUsage | None = None) -> bool:
        return False


@admin.register(ModelPull)
class ModelPullAdmin(admin.ModelAdmin[ModelPull]):
    """Downloads into Ollama, written by the worker; start them from the API."""

    list_display = ["model", "workspace", "status", "completed_bytes", "total_bytes", "updated_at"]
    list_filter = ["status", "workspace"]
    readonly_fields = [f.name for f in ModelPull._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
