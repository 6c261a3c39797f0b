"""The one write of the audit log: append an entry. There is no update and no delete.

The services that make a change call `audit_record` inside their own transaction, so every door
(API, dashboard, admin, a command) leaves exactly one entry per change, and a change whose entry
cannot be written is undone. Who acted is an argument of those services; where the request came
from (address, browser) is set once per request by `AuditOriginMiddleware`.

This app imports no other app (its foreign keys name users and workspaces by string), so any app,
`accounts` included, may depend on it directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from apps.audit.models import AuditEntry

Target = Model | tuple[str, Any] | None


@dataclass(frozen=True)
class Origin:
    ip: str | None
    user_agent: str


_origin: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


@contextmanager
def audit_origin(request: HttpRequest) -> Iterator[None]:
    """Entries written while the request is served carry its client address and user agent."""
    ip = BaseThrottle().get_ident(request) or None  # type: ignore[arg-type]  # honours NUM_PROXIES
    token = _origin.set(Origin(ip=ip, user_agent=request.META.get("HTTP_USER_AGENT", "")[:255]))
    try:
        yield
    finally:
        _origin.reset(token)


def _target(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, Model):
        return target._meta.label_lower, str(target.pk)
    kind, pk = target
    return kind, str(pk)


def audit_record(
    *,
    workspace_id: int | None,
    actor_id: int | None,
    action: str,
    target: Target = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; call it inside the transaction of the change it records. `details` must
    hold no secret (name the fields that changed, never their values)."""
    origin = _origin.get() or Origin(ip=None, user_agent="")
    target_type, target_id = _target(target)
    return AuditEntry.objects.create(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details or {},
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
