"""Celery doors into the campaigns services. A task's name starts with its queue."""

from __future__ import annotations

from apps.campaigns.services import imports, recurrence, runner
from celery_app import app


@app.task(name="campaigns.contact_import_run")
def contact_import_run(import_id: int) -> str:
    return imports.contact_import_run(import_id=import_id)


@app.task(name="campaigns.campaign_step")
def campaign_step(campaign_id: int, token: str) -> float | None:
    """One step of a running campaign; queues the next while the campaign runs (see runner)."""
    delay = runner.campaign_step(campaign_id=campaign_id, token=token)
    if delay is not None:
        campaign_step.apply_async((campaign_id, token), countdown=delay)
    return delay


@app.task(name="campaigns.campaigns_tick")
def campaigns_tick() -> dict[str, int]:
    return runner.campaigns_tick()


@app.task(name="campaigns.campaign_recur")
def campaign_recur(campaign_id: int) -> int | None:
    """Beat, at an occurrence of a recurring campaign: the id of the run it started."""
    run = recurrence.campaign_recur(campaign_id=campaign_id)
    return run.pk if run is not None else None


@app.task(name="campaigns.booking_reminders_tick")
def booking_reminders_tick() -> dict[str, int]:
    """Beat, every minute: the booking reminders due now, each queued once."""
    from apps.campaigns.services import reminders

    return reminders.booking_reminders_send()
