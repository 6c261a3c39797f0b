"""Celery doors into the alerts notifications (queue `default`)."""

from __future__ import annotations

from typing import Any

from apps.alerts import notifications
from celery_app import RETRY_BACKOFF_MAX, BaseTask, app
from chatbot.exceptions import TransientError

WEBHOOK_MAX_RETRIES = 6  # about 1 + 2 + 4 + ... 32 s with jitter, then given up


@app.task(name="default.alert_email_send", autoretry_for=(OSError, *BaseTask.autoretry_for), max_retries=3)
def alert_email_send(alert_id: int) -> int:
    return notifications.alert_email_send(alert_id=alert_id)


@app.task(
    bind=True,
    name="default.alert_webhook_deliver",
    autoretry_for=(TransientError, *BaseTask.autoretry_for),
    retry_backoff=True,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=WEBHOOK_MAX_RETRIES,
)
def alert_webhook_deliver(self: Any, alert_id: int) -> str:
    return notifications.alert_webhook_deliver(
        alert_id=alert_id, last_try=self.request.retries >= WEBHOOK_MAX_RETRIES
    )
