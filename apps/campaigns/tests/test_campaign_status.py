"""A campaign's status is a guarded state machine: every move is a conditional UPDATE, so a move decided
on a stale read is refused, and an ended campaign never runs again (issue 12, item 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from apps.campaigns.models import Campaign
from apps.campaigns.services.campaigns import TRANSITIONS, Move, campaign_move
from apps.campaigns.tests.factories import CampaignFactory

St = Campaign.Status

EXPECTED = {
    # move: (the statuses it starts from, where it ends)
    Move.SCHEDULE: ({St.DRAFT}, St.SCHEDULED),
    Move.UNSCHEDULE: ({St.SCHEDULED}, St.DRAFT),
    Move.START: ({St.SCHEDULED}, St.RUNNING),
    Move.PAUSE: ({St.RUNNING}, St.PAUSED),
    Move.AUTO_PAUSE: ({St.RUNNING}, St.PAUSED),
    Move.RESUME: ({St.PAUSED}, St.RUNNING),
    Move.COMPLETE: ({St.RUNNING}, St.COMPLETED),
    Move.CANCEL: ({St.DRAFT, St.SCHEDULED, St.RUNNING, St.PAUSED}, St.CANCELLED),
    Move.FAIL: ({St.SCHEDULED, St.RUNNING, St.PAUSED}, St.FAILED),
}
# What a move needs to be told.
GIVEN = {
    Move.SCHEDULE: {"scheduled_at": timezone.now()},
    Move.AUTO_PAUSE: {"paused_reason": "spam_rate_limit"},
    Move.FAIL: {"failure": "The template was disabled by Meta."},
}


def _status(campaign: Campaign) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def _campaign(status: str, **fields) -> Campaign:
    if status != St.DRAFT:
        fields.setdefault("scheduled_at", timezone.now())
    return CampaignFactory.create(status=status, **fields)


def test_the_table_holds_every_move_and_no_move_leaves_an_ended_campaign():
    assert {move: (set(start), end) for move, (start, end) in TRANSITIONS.items()} == EXPECTED
    ended = {St.COMPLETED, St.CANCELLED, St.FAILED}
    assert not any(ended & start for start, _ in TRANSITIONS.values())


@pytest.mark.django_db
@pytest.mark.parametrize("start", list(St))
@pytest.mark.parametrize("move", list(Move))
def test_each_move_happens_from_its_allowed_statuses_only(move, start):
    campaign = _campaign(start)

    moved = campaign_move(campaign=campaign, move=move, **GIVEN.get(move, {}))

    allowed, end = EXPECTED[move]
    assert moved is (start in allowed)
    assert _status(campaign) == (end if moved else start)
    assert campaign.status == _status(campaign)
    changed_at = Campaign.objects.values_list("status_changed_at", flat=True).get(pk=campaign.pk)
    assert (changed_at is not None) is moved


@pytest.mark.django_db
def test_a_campaign_runs_through_its_life_and_each_move_writes_its_times_and_reasons():
    campaign = _campaign(St.DRAFT)
    at = timezone.now() + timedelta(hours=2)

    assert campaign_move(campaign=campaign, move=Move.SCHEDULE, scheduled_at=at)
    assert campaign_move(campaign=campaign, move=Move.START)
    started_at = campaign.started_at
    assert campaign_move(campaign=campaign, move=Move.AUTO_PAUSE, paused_reason="spam_rate_limit")
    paused = Campaign.objects.get(pk=campaign.pk)
    assert campaign_move(campaign=campaign, move=Move.RESUME)
    assert campaign_move(campaign=campaign, move=Move.PAUSE)
    by_staff = Campaign.objects.get(pk=campaign.pk)
    assert campaign_move(campaign=campaign, move=Move.RESUME)
    assert campaign_move(campaign=campaign, move=Move.COMPLETE)

    done = Campaign.objects.get(pk=campaign.pk)
    assert (paused.status, paused.paused_reason) == (St.PAUSED, "spam_rate_limit")
    assert (by_staff.status, by_staff.paused_reason) == (St.PAUSED, "staff")
    assert (done.status, done.scheduled_at, done.paused_reason) == (St.COMPLETED, at, "")
    assert done.started_at == started_at  # a resume is not a new start
    assert started_at is not None and done.finished_at is not None and done.finished_at >= started_at


@pytest.mark.django_db
def test_unscheduling_makes_a_draft_again_without_a_time():
    campaign = _campaign(St.SCHEDULED)

    assert campaign_move(campaign=campaign, move=Move.UNSCHEDULE)

    assert Campaign.objects.values_list("status", "scheduled_at").get(pk=campaign.pk) == (St.DRAFT, None)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("move", "missing"), [(Move.SCHEDULE, "scheduled_at"), (Move.AUTO_PAUSE, "paused_reason")]
)
def test_a_move_without_what_it_needs_is_refused_before_any_write(move, missing):
    campaign = _campaign(St.DRAFT if move is Move.SCHEDULE else St.RUNNING)
    before = _status(campaign)

    with pytest.raises(ValueError):
        campaign_move(campaign=campaign, move=move)

    assert _status(campaign) == before
    assert Campaign.objects.values_list(missing, flat=True).get(pk=campaign.pk) in (None, "")


@pytest.mark.django_db
def test_the_database_refuses_a_scheduled_campaign_without_a_time():
    campaign = _campaign(St.DRAFT)

    with pytest.raises(IntegrityError):
        Campaign.objects.filter(pk=campaign.pk).update(status=St.SCHEDULED)


@pytest.mark.django_db
def test_a_stale_copy_cannot_revive_an_ended_campaign():
    """Two screens hold the same running campaign; one cancels it, the other (still showing it
    running) pauses and resumes: both are refused, the copy learns it was cancelled."""
    campaign = _campaign(St.RUNNING)
    stale = Campaign.objects.get(pk=campaign.pk)
    assert campaign_move(campaign=campaign, move=Move.CANCEL)
    cancelled = Campaign.objects.get(pk=campaign.pk)

    paused = campaign_move(campaign=stale, move=Move.PAUSE)
    stale.status = St.PAUSED  # a copy that even believes it paused
    resumed = campaign_move(campaign=stale, move=Move.RESUME)

    after = Campaign.objects.get(pk=campaign.pk)
    assert (paused, resumed, stale.status) == (False, False, St.CANCELLED)
    assert (after.status, after.finished_at, after.paused_reason) == (
        St.CANCELLED,
        cancelled.finished_at,
        "",
    )


@pytest.mark.django_db
def test_where_narrows_a_move_to_the_state_the_caller_saw():
    """The scheduler starts a campaign only while its time is still due (staff may have moved it)."""
    later = timezone.now() + timedelta(days=1)
    campaign = _campaign(St.SCHEDULED, scheduled_at=later)

    started = campaign_move(campaign=campaign, move=Move.START, where=Q(scheduled_at__lte=timezone.now()))

    assert (started, _status(campaign)) == (False, St.SCHEDULED)
