from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.whatsapp import services
from apps.whatsapp.models import Channel
from chatbot.exceptions import DomainError

EDITABLE = [
    "workspace",
    "kind",
    "name",
    "phone_number_id",
    "display_phone_number",
    "waba_id",
    "send_rate",
    "messaging_limit",
    "is_active",
]


def _secret_input(label: str) -> forms.CharField:
    return forms.CharField(
        label=f"New {label}",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored value.",
    )


class ChannelForm(forms.ModelForm[Channel]):
    """The stored secrets never reach the page: only a new value can be typed, or the old one cleared."""

    new_app_secret = _secret_input("app secret")
    new_access_token = _secret_input("access token")
    new_verify_token = _secret_input("verify token")
    clear_secrets = forms.MultipleChoiceField(
        required=False,
        choices=[(name, name.replace("_", " ")) for name in services.SECRET_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Remove these stored secrets.",
    )

    class Meta:
        model = Channel
        fields = EDITABLE

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        kind = cleaned.get("kind", getattr(self.instance, "kind", ""))
        if kind == Channel.Kind.CLOUD and not cleaned.get("phone_number_id"):
            self.add_error("phone_number_id", "Required for a Cloud API channel.")
        elif self._claims_number(kind, cleaned):
            # The service proves ownership again when saving; checking here shows a refusal on the form
            # (save_model cannot) instead of a server error.
            candidate = Channel(
                kind=kind,
                phone_number_id=cleaned.get("phone_number_id") or "",
                display_phone_number=cleaned.get("display_phone_number") or "",
                app_secret=self._secret(cleaned, "app_secret"),
                access_token=self._secret(cleaned, "access_token"),
            )
            try:
                services.channel_number_claim_verify(channel=candidate)
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        return cleaned

    def _claims_number(self, kind: str, cleaned: dict[str, Any]) -> bool:
        if self.instance.pk is None:
            return True
        new_token = kind == Channel.Kind.CLOUD and cleaned.get("new_access_token")
        return bool({"kind", "phone_number_id"}.intersection(self.changed_data) or new_token)

    def _secret(self, cleaned: dict[str, Any], name: str) -> str:
        if name in (cleaned.get("clear_secrets") or []):
            return ""
        return str(cleaned.get(f"new_{name}") or (getattr(self.instance, name) if self.instance.pk else ""))


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin[Channel]):
    form = ChannelForm
    list_display = [
        "__str__",
        "workspace",
        "kind",
        "phone_number_id",
        "is_active",
        "health",
        "last_webhook_at",
    ]
    list_filter = ["kind", "is_active", "health", "workspace"]
    search_fields = ["name", "phone_number_id", "display_phone_number", "waba_id"]
    readonly_fields = [
        "app_secret_set",
        "access_token_set",
        "verify_token_set",
        "health",
        "health_detail",
        "health_changed_at",
        "last_webhook_at",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": tuple(EDITABLE)}),
        (
            "Secrets",
            {
                "fields": [
                    "app_secret_set",
                    "new_app_secret",
                    "access_token_set",
                    "new_access_token",
                    "verify_token_set",
                    "new_verify_token",
                    "clear_secrets",
                ]
            },
        ),
        (
            "Health",
            {"fields": ["health", "health_detail", "health_changed_at", "last_webhook_at", "created_at"]},
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Channel | None = None) -> list[str]:
        # A number moves between workspaces only by deleting and adding it again.
        return [*self.readonly_fields, "workspace"] if obj else list(self.readonly_fields)

    @admin.display(description="App secret", boolean=True)
    def app_secret_set(self, channel: Channel) -> bool:
        return bool(channel.app_secret)

    @admin.display(description="Access token", boolean=True)
    def access_token_set(self, channel: Channel) -> bool:
        return bool(channel.access_token)

    @admin.display(description="Verify token", boolean=True)
    def verify_token_set(self, channel: Channel) -> bool:
        return bool(channel.verify_token)

    def delete_model(self, request: HttpRequest, obj: Channel) -> None:
        services.channel_delete(channel=obj, actor_id=request.user.pk)  # audited, as in the API

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            services.channel_delete(channel=channel, actor_id=request.user.pk)

    def save_model(self, request: HttpRequest, obj: Channel, form: ChannelForm, change: bool) -> None:
        data: dict[str, Any] = {
            field: form.cleaned_data[field] for field in EDITABLE if field in services.CHANNEL_FIELDS
        }
        for name in form.cleaned_data.get("clear_secrets") or []:
            data[name] = ""
        for name in services.SECRET_FIELDS:
            if value := form.cleaned_data.get(f"new_{name}"):
                data[name] = value
        if change:
            services.channel_update(
                channel=Channel.objects.get(pk=obj.pk), data=data, actor_id=request.user.pk
            )
        else:
            created = services.channel_create(
                workspace=form.cleaned_data["workspace"], actor_id=request.user.pk, **data
            )
            obj.pk, obj.created_at = created.pk, created.created_at
