from __future__ import annotations

from apps.accounts.models import Workspace
from apps.live.models import LiveEvent


def live_events_since(*, workspace: Workspace, after_id: int, limit: int = 200) -> list[LiveEvent]:
    """The workspace's events after `after_id`, oldest first."""
    return list(LiveEvent.objects.filter(workspace=workspace, id__gt=after_id).order_by("id")[:limit])


def live_last_id(*, workspace: Workspace) -> int:
    last = LiveEvent.objects.filter(workspace=workspace).order_by("-id").values_list("id", flat=True)
    return last.first() or 0
