from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apps.audit.models import AuditEntry

if TYPE_CHECKING:  # a type only: this app imports no domain app at run time (see services)
    from apps.accounts.models import Workspace


def audit_list(
    *,
    workspace: Workspace,
    action: str = "",
    actor: int | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """The workspace's entries, newest first; `since` is inclusive, `before` exclusive."""
    entries = AuditEntry.objects.filter(workspace=workspace).select_related("actor")
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor_id=actor)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if before is not None:
        entries = entries.filter(created_at__lt=before)
    return entries.order_by("-created_at", "-pk")


def audit_actions(*, workspace: Workspace) -> list[str]:
    """The actions recorded in the workspace, for a filter."""
    found = AuditEntry.objects.filter(workspace=workspace).order_by().values_list("action", flat=True)
    return sorted(found.distinct())
