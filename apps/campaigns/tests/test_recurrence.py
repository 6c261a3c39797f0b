"""Recurring campaigns (issue 12, item 3): beat starts a copy of the series at every occurrence, in the
workspace's time zone, once per occurrence, with the segment read anew; the series itself never sends."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.accounts.models import Workspace
from apps.campaigns.models import Campaign, Recipient, Segment, Template
from apps.campaigns.services import recurrence, runner
from apps.campaigns.tests.test_runner import campaign_for, contacts
from chatbot.exceptions import Conflict, ValidationFailed

pytestmark = [pytest.mark.django_db]

St = Campaign.Status


@pytest.fixture
def series(waba_channel, template, admin):
    Workspace.objects.filter(pk=waba_channel.workspace_id).update(timezone="Europe/Madrid")
    segment = Segment.objects.create(
        workspace=waba_channel.workspace, name="VIP", filters={"tags_any": ["vip"]}
    )
    return campaign_for(waba_channel, template, admin, segment=segment, name="Recordatorio")


@pytest.mark.parametrize(
    ("recurrence_text", "why"),
    [("0 9 * *", "five fields"), ("*/5 9 * * *", "at most once a day"), ("0 25 * * *", "recurrence")],
)
def test_a_bad_or_too_frequent_recurrence_is_refused(series, admin, recurrence_text, why):
    with pytest.raises(ValidationFailed, match=why):
        recurrence.campaign_repeat(campaign=series, user=admin, recurrence=recurrence_text)
    series.refresh_from_db()
    assert series.status == St.DRAFT and not PeriodicTask.objects.exists()


def test_a_series_is_a_beat_task_in_the_workspaces_zone_and_never_sends_itself(series, admin):
    recurrence.campaign_repeat(campaign=series, user=admin, recurrence="0  9 * * 1")

    task = PeriodicTask.objects.get()
    assert (task.task, json.loads(task.args), task.enabled) == ("campaigns.campaign_recur", [series.pk], True)
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, cron.timezone) == (
        "0",
        "9",
        "1",
        ZoneInfo("Europe/Madrid"),
    )
    series.refresh_from_db()
    assert (series.status, series.recurrence) == (St.SCHEDULED, "0 9 * * 1")
    assert runner.campaigns_tick(now=timezone.now() + timedelta(days=30))["started"] == 0
    assert not runner.campaign_start(campaign=series, now=timezone.now() + timedelta(days=30))


def test_each_occurrence_starts_one_run_that_reads_the_segment_anew(
    series, admin, waba_channel, tasks_captured
):
    contacts(waba_channel.workspace, 2, tags=["vip"])
    recurrence.campaign_repeat(campaign=series, user=admin, recurrence="0 9 * * *")
    monday = timezone.now().replace(second=17)

    with TestCase.captureOnCommitCallbacks(execute=True):
        first = recurrence.campaign_recur(campaign_id=series.pk, now=monday)
    again = recurrence.campaign_recur(campaign_id=series.pk, now=monday)  # beat's tick delivered twice

    assert again is None
    assert first is not None and first.status == St.RUNNING and first.parent_id == series.pk
    assert first.occurrence == monday.replace(second=0, microsecond=0)
    assert tasks_captured.of("campaigns.campaign_step")[-1].args == (first.pk, first.feed_token)
    runner.campaign_step(campaign_id=first.pk, token=first.feed_token)
    assert Recipient.objects.filter(campaign=first).count() == 2

    contacts(waba_channel.workspace, 1, start=40, tags=["vip"])
    second = recurrence.campaign_recur(campaign_id=series.pk, now=monday + timedelta(days=1))
    runner.campaign_step(campaign_id=second.pk, token=second.feed_token)
    assert Recipient.objects.filter(campaign=second).count() == 3
    series.refresh_from_db()
    assert series.status == St.SCHEDULED and not Recipient.objects.filter(campaign=series).exists()


def test_a_run_whose_template_meta_paused_fails_with_the_reason_and_the_series_goes_on(
    series, admin, template
):
    recurrence.campaign_repeat(campaign=series, user=admin, recurrence="0 9 * * *")
    Template.objects.filter(pk=template.pk).update(status=Template.Status.PAUSED)

    run = recurrence.campaign_recur(campaign_id=series.pk)

    assert run.status == St.FAILED and "paused" in run.failure
    series.refresh_from_db()
    assert series.status == St.SCHEDULED


def test_a_series_back_to_draft_or_cancelled_stops_beat_at_its_next_call(series, admin):
    recurrence.campaign_repeat(campaign=series, user=admin, recurrence="0 9 * * *")
    runner.campaign_unschedule(campaign=series, user=admin)
    series.refresh_from_db()
    assert (series.status, series.recurrence) == (St.DRAFT, "")

    assert recurrence.campaign_recur(campaign_id=series.pk) is None
    assert not PeriodicTask.objects.exists()
    with pytest.raises(Conflict):
        recurrence.campaign_repeat(
            campaign=Campaign.objects.create(workspace=series.workspace, name="sin plantilla"),
            user=admin,
            recurrence="0 9 * * *",
        )
