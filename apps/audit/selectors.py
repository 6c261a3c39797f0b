from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.models import Workspace
from apps.audit.models import AuditEntry


def audit_list(*, workspace: Workspace, action: str = "", actor: int | None = None) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(workspace=workspace).select_related("actor")
    if action:
        entries = entries.filter(action=action)
    if actor is not None:
        entries = entries.filter(actor_id=actor)
    return entries.order_by("-created_at", "-pk")
