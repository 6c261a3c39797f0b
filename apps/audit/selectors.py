from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apps.audit.models import AuditEntry

if TYPE_CHECKING:  # a type only: this app imports no domain app at run time (see services)
    from apps.accounts.models import Workspace


def audit_list(*, workspace: Workspace, action: str = "", actor: int | None = None) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(workspace=workspace).select_related("actor")
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor_id=actor)
    return entries.order_by("-created_at", "-pk")
