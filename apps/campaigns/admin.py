from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.campaigns.models import AudienceSettings, Campaign, ContactImport, Recipient, Segment, Template
from apps.campaigns.services import templates
from chatbot.exceptions import DomainError


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin[Template]):
    """Meta owns a template's content, status, quality and category: they are shown, never edited here.
    Create them through the API or the dashboard (which submit them to Meta)."""

    list_display = ["name", "language", "workspace", "category", "status", "quality", "synced_at"]
    list_filter = ["status", "quality", "category", "workspace"]
    search_fields = ["name", "meta_id", "waba_id"]
    readonly_fields = [field.name for field in Template._meta.fields]
    actions = ["sync_from_meta"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Sync the templates of these templates' accounts from Meta")
    def sync_from_meta(self, request: HttpRequest, queryset: QuerySet[Template]) -> None:
        done = set()
        for template in queryset.select_related("channel", "workspace"):
            if template.channel is None or (template.workspace_id, template.channel_id) in done:
                continue
            done.add((template.workspace_id, template.channel_id))
            try:
                report = templates.templates_sync(workspace=template.workspace, channel=template.channel)
            except DomainError as exc:
                self.message_user(request, f"{template.channel}: {exc.message}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{template.channel}: {report.created} new, {report.updated} changed, {report.gone} gone.",
            )


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin[Segment]):
    list_display = ["name", "workspace", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["name"]


@admin.register(ContactImport)
class ContactImportAdmin(admin.ModelAdmin[ContactImport]):
    list_display = [
        "pk",
        "workspace",
        "filename",
        "status",
        "processed_rows",
        "total_rows",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "workspace"]
    exclude = ["data"]
    readonly_fields = [field.name for field in ContactImport._meta.fields if field.name != "data"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AudienceSettings)
class AudienceSettingsAdmin(admin.ModelAdmin[AudienceSettings]):
    list_display = ["workspace", "default_region"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    """Shown only: a campaign's status moves through services.campaigns.campaign_move, never a form."""

    list_display = ["name", "workspace", "status", "scheduled_at", "started_at", "finished_at"]
    list_filter = ["status", "workspace"]
    search_fields = ["name"]
    readonly_fields = [field.name for field in Campaign._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin[Recipient]):
    """Shown only, by campaign: written by the runner (services/runner.py); a 100,000-row campaign
    lists without counting the table (the campaign filter narrows it)."""

    list_display = ["contact", "campaign", "state", "skip_reason", "queued_at"]
    list_filter = ["state", "skip_reason"]
    list_select_related = ["contact", "campaign"]
    search_fields = ["contact__wa_id", "campaign__name"]
    raw_id_fields = ["campaign", "contact", "channel", "message"]
    readonly_fields = [field.name for field in Recipient._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Recipient | None = None) -> bool:
        return False
