from __future__ import annotations

from apps.analytics.services import rollups_refresh_all
from celery_app import app


@app.task(name="default.analytics_rollups_refresh")
def analytics_rollups_refresh_task() -> int:
    return rollups_refresh_all()
