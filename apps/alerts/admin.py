from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts import services
from apps.alerts.models import Alert, AlertRule, WebhookDelivery
from chatbot.exceptions import DomainError


class AlertRuleForm(forms.ModelForm[AlertRule]):
    # Write-only: an empty field keeps the stored secret.
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty: keep the current one.",
    )

    def clean(self) -> dict[str, Any]:
        # The services' checks as form errors, so a rule that cannot work is never "saved".
        data = super().clean() or {}
        rule = AlertRule(
            pk=self.instance.pk,
            workspace=data.get("workspace") or getattr(self.instance, "workspace", None),
            **{
                name: data[name] for name in services.RULE_FIELDS if name in data and name != "webhook_secret"
            },
        )
        rule.webhook_secret = data.get("webhook_secret") or self.instance.webhook_secret
        for name in ("keywords", "exclusions", "channels", "statuses", "notify_emails"):
            if not isinstance(getattr(rule, name), list):
                raise forms.ValidationError({name: 'A JSON list, e.g. ["reembolso"].'})
        try:
            services.alert_rule_check(rule)
        except DomainError as exc:
            raise forms.ValidationError(f"{exc.message} {exc.details or ''}".strip()) from exc
        return data

    class Meta:
        model = AlertRule
        fields = [
            "workspace",
            "name",
            "kind",
            "severity",
            "is_active",
            "keywords",
            "exclusions",
            "pattern",
            "minutes",
            "rate",
            "min_count",
            "threshold",
            "classifier",
            "channels",
            "statuses",
            "cooldown_minutes",
            "notify_emails",
            "webhook_url",
            "hand_to_person",
        ]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin[AlertRule]):
    form = AlertRuleForm
    list_display = ["name", "workspace", "kind", "severity", "is_active", "cooldown_minutes", "updated_at"]
    list_filter = ["kind", "severity", "is_active", "workspace"]
    search_fields = ["name"]

    def get_readonly_fields(self, request: HttpRequest, obj: AlertRule | None = None) -> list[str]:
        return ["workspace"] if obj else []

    def save_model(
        self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm[AlertRule], change: bool
    ) -> None:
        # Through the services: the same checks as the API, an audit entry, and the rules recompiled.
        data: dict[str, Any] = {
            name: form.cleaned_data[name] for name in services.RULE_FIELDS if name in form.cleaned_data
        }
        if not data.get("webhook_secret"):
            data.pop("webhook_secret", None)
        try:
            if change:
                services.alert_rule_update(rule=obj, actor_id=request.user.pk, **data)
            else:
                data.pop("workspace", None)
                saved = services.alert_rule_create(
                    workspace_id=form.cleaned_data["workspace"].pk, actor_id=request.user.pk, **data
                )
                obj.pk = saved.pk
        except DomainError as exc:
            # The admin has no error path after form validation; say so and keep the old row.
            messages.error(request, f"Not saved: {exc.message} {exc.details or ''}")

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        services.alert_rule_delete(rule=obj, actor_id=request.user.pk)


class WebhookDeliveryInline(admin.TabularInline[WebhookDelivery, Alert]):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("number", "url", "started_at", "finished_at", "outcome", "status_code", "detail")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = ["created_at", "workspace", "severity", "rule_name", "summary", "state", "assignee"]
    list_filter = ["state", "severity", "kind", "workspace"]
    search_fields = ["rule_name", "summary"]
    date_hierarchy = "created_at"
    inlines = [WebhookDeliveryInline]
    actions = ["acknowledge", "resolve"]
    readonly_fields = [
        "workspace",
        "rule",
        "rule_name",
        "kind",
        "severity",
        "channel",
        "conversation",
        "message",
        "summary",
        "state",
        "assignee",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = 0
        for alert in queryset:
            try:
                services.alert_acknowledge(alert=alert, user_id=int(request.user.pk or 0))
                done += 1
            except DomainError:
                continue
        messages.info(request, f"{done} acknowledged.")

    @admin.action(description="Resolve the selected alerts")
    def resolve(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        for alert in queryset:
            services.alert_resolve(alert=alert, user_id=int(request.user.pk or 0))
        messages.info(request, f"{queryset.count()} resolved.")
