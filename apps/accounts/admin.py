from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from apps.accounts import services
from apps.accounts.forms import ThrottledAdminAuthenticationForm
from apps.accounts.models import LoginSession, Membership, User, Workspace

# The admin's login counts failures with the API's and the dashboard's (see apps.accounts.forms).
admin.site.login_form = ThrottledAdminAuthenticationForm


class MembershipInline(admin.TabularInline[Membership, Workspace]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    list_display = ["username", "email", "is_active", "is_staff", "last_login"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # A new password ends the user's logins in User.save; unticking "active" goes through the service.
        if change and "is_active" in form.changed_data:
            services.user_active_set(user=obj, active=obj.is_active)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin[Workspace]):
    list_display = ["name", "slug", "default_language", "timezone", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        instances = formset.save(commit=False)
        # Rows ticked "delete" go through the service, so a user left in no workspace is logged out.
        services.memberships_delete(memberships=list(formset.deleted_objects), actor_id=request.user.pk)
        for instance in instances:
            instance.save()
        formset.save_m2m()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "workspace__name"]

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.memberships_delete(memberships=[obj], actor_id=request.user.pk)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        services.memberships_delete(
            memberships=list(queryset.select_related("user")), actor_id=request.user.pk
        )


@admin.register(LoginSession)
class LoginSessionAdmin(admin.ModelAdmin[LoginSession]):
    list_display = ["user", "created_at", "ip_address", "revoked_at", "revoked_reason"]
    list_filter = ["revoked_reason"]
    readonly_fields = ["id", "user", "created_at", "ip_address", "user_agent"]
    search_fields = ["user__username"]
