from __future__ import annotations

from apps.assistant import local_models
from celery_app import app


# Not retried: a failed download is reported on its row; the admin starts it again.
@app.task(name="default.ollama_pull", autoretry_for=())
def ollama_pull(pull_id: int) -> str:
    return local_models.ollama_pull_run(pull_id=pull_id)
