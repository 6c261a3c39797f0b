"""The one write of the audit log: append an entry. There is no update and no delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.audit.models import AuditEntry

Target = Model | tuple[str, Any] | None


def _target(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, Model):
        return target._meta.label_lower, str(target.pk)
    kind, pk = target
    return kind, str(pk)


def audit_record(
    *,
    request_or_none: Request | HttpRequest | None,
    workspace_id: int | None,
    actor: Any = None,
    action: str,
    target: Target = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `actor` defaults to the request's user; `details` must hold no secret
    (name the fields that changed, never their values)."""
    ip: str | None = None
    user_agent = ""
    if request_or_none is not None:
        ip = BaseThrottle().get_ident(request_or_none) or None  # type: ignore[arg-type]  # honours NUM_PROXIES
        user_agent = request_or_none.META.get("HTTP_USER_AGENT", "")[:255]
        if actor is None:
            user = getattr(request_or_none, "user", None)
            actor = user if user is not None and user.is_authenticated else None
    target_type, target_id = _target(target)
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        ip=ip,
        user_agent=user_agent,
    )


@dataclass
class Draft:
    """What the block under `audited` fills in once the change is known (the new object, fields)."""

    target: Target = None
    details: dict[str, Any] = field(default_factory=dict)


@contextmanager
def audited(
    request: Request | HttpRequest, *, workspace_id: int | None, action: str, target: Target = None
) -> Iterator[Draft]:
    """Run a change and its audit entry in one transaction: both land, or neither does (a change
    that raises leaves no entry, and an entry that cannot be written undoes the change)."""
    draft = Draft(target=target)
    with transaction.atomic():
        yield draft
        audit_record(
            request_or_none=request,
            workspace_id=workspace_id,
            action=action,
            target=draft.target,
            details=draft.details,
        )
