from __future__ import annotations

from apps.assistant import local_models
from celery_app import app

# Queue `local_models`, served by a worker of its own: a model server that stalls holds only these
# tasks, never the customer messages of the inbound, llm and outbound queues.


# Not retried: a failed download is reported on its row; the admin starts it again.
@app.task(name="local_models.ollama_pull", autoretry_for=())
def ollama_pull(pull_id: int) -> str:
    return local_models.ollama_pull_run(pull_id=pull_id)


@app.task(name="local_models.lmstudio_load", autoretry_for=())
def lmstudio_load(job_id: int) -> str:
    return local_models.lmstudio_load_run(job_id=job_id)


# Pulls queued on `default` before the upgrade still find their task.
@app.task(name="default.ollama_pull", autoretry_for=())
def ollama_pull_queued_before_upgrade(pull_id: int) -> str:
    return local_models.ollama_pull_run(pull_id=pull_id)
