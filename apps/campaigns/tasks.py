"""Celery doors into the campaigns services. A task's name starts with its queue."""

from __future__ import annotations

from apps.campaigns.services import imports
from celery_app import app


@app.task(name="campaigns.contact_import_run")
def contact_import_run(import_id: int) -> str:
    return imports.contact_import_run(import_id=import_id)
