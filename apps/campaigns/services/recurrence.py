"""Recurring campaigns: a series is a scheduled campaign with a cron `recurrence`; django-celery-beat
calls `campaigns.campaign_recur` at each occurrence, in the workspace's time zone (beat's crontab
schedules carry their zone, so 09:00 stays 09:00 across a change of the clocks), and each call starts a
copy of the series as a campaign of its own. The series itself never sends.

A series runs at most once a day (a number for the minute and the hour): Meta limits how many
marketing messages a customer may get, and a campaign every few minutes is spam.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.audit.services import audit_record
from apps.campaigns.models import Campaign
from apps.campaigns.services import runner
from apps.campaigns.services.campaigns import Move, campaign_move
from chatbot.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

St = Campaign.Status
TASK = "campaigns.campaign_recur"


def _fields(recurrence: str) -> dict[str, str]:
    """Beat's crontab fields of `minute hour day-of-month month day-of-week`. Raises ValidationFailed."""
    parts = recurrence.split()
    if len(parts) != 5:
        raise ValidationFailed(
            "recurrence is five fields: minute hour day-of-month month day-of-week (e.g. 0 9 * * 1).",
            code="invalid_recurrence",
        )
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    if not (minute.isdigit() and hour.isdigit()):
        raise ValidationFailed(
            "A campaign repeats at most once a day: give one minute and one hour (e.g. 30 9 * * *).",
            code="invalid_recurrence",
        )
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except ValueError as exc:
        raise ValidationFailed(f"recurrence: {exc}", code="invalid_recurrence") from None
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def _task_name(campaign: Campaign) -> str:
    return f"campaign {campaign.pk} recurrence"


def campaign_repeat(*, campaign: Campaign, user: Any, recurrence: str) -> Campaign:
    """A draft becomes a series run by beat at every occurrence. Raises Conflict when the campaign
    cannot be sent as it is, ValidationFailed for a bad recurrence."""
    fields = _fields(recurrence)
    campaign = Campaign.objects.select_related("template", "channel", "segment", "workspace").get(
        pk=campaign.pk
    )
    problem = runner.launch_problem(campaign)
    if problem:
        raise Conflict(problem, code="campaign_not_ready")
    zone = ZoneInfo(campaign.workspace.timezone or "UTC")
    with transaction.atomic():
        if not campaign_move(
            campaign=campaign,
            move=Move.SCHEDULE,
            scheduled_at=timezone.now(),
            recurrence=" ".join(recurrence.split()),
        ):
            raise Conflict(f"A {campaign.status} campaign cannot be scheduled.", code="illegal_transition")
        schedule, _ = CrontabSchedule.objects.get_or_create(**fields, timezone=zone)
        PeriodicTask.objects.update_or_create(
            name=_task_name(campaign),
            defaults={"task": TASK, "crontab": schedule, "args": json.dumps([campaign.pk]), "enabled": True},
        )
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=user.pk,
            action="campaign.repeat",
            target=campaign,
            details={"recurrence": campaign.recurrence},
        )
    return campaign


def recurrence_stop(campaign: Campaign) -> None:
    """Beat forgets the series (unscheduled, cancelled or failed); its past runs stay."""
    PeriodicTask.objects.filter(name=_task_name(campaign)).delete()


def campaign_recur(*, campaign_id: int, now: datetime | None = None) -> Campaign | None:
    """Beat, at an occurrence of a series: start a copy of it. None when the series is no longer
    scheduled (and beat is told to stop) or this occurrence already has its run."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    series = (
        Campaign.objects.select_related("segment", "workspace")
        .filter(pk=campaign_id, status=St.SCHEDULED)
        .exclude(recurrence="")
        .first()
    )
    if series is None:
        PeriodicTask.objects.filter(name=f"campaign {campaign_id} recurrence").delete()
        return None
    local = now.astimezone(ZoneInfo(series.workspace.timezone or "UTC"))
    run = Campaign(
        workspace_id=series.workspace_id,
        name=f"{series.name[:100]} · {local:%Y-%m-%d %H:%M}",
        template_id=series.template_id,
        channel_id=series.channel_id,
        segment_id=series.segment_id,
        audience_filters=series.audience_filters,
        variables=series.variables,
        header_variables=series.header_variables,
        button_variables=series.button_variables,
        header_media_url=series.header_media_url,
        parent=series,
        occurrence=now,
        created_by_id=series.created_by_id,
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        logger.info("campaign %s: the run of %s exists already", series.pk, now)
        return None
    try:
        # The segment is read now: a weekly reminder reaches whoever is in it this week.
        runner.campaign_schedule(campaign=run, user=None)
    except Conflict as exc:
        with transaction.atomic():
            campaign_move(campaign=run, move=Move.SCHEDULE, scheduled_at=now)
            campaign_move(campaign=run, move=Move.FAIL, failure=exc.message[:255])
        logger.warning("campaign %s: the run of %s cannot be sent: %s", series.pk, now, exc.message)
    run.refresh_from_db()
    return run
