"""Celery doors into the live services."""

from __future__ import annotations

from apps.live.services import live_events_cleanup
from celery_app import app


@app.task(name="default.live_events_cleanup")
def live_events_cleanup_task() -> int:
    return live_events_cleanup()
