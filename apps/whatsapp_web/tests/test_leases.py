"""Which worker-web process drives which channel: leases on the session rows, in real PostgreSQL (its
clock decides expiry), between two owners."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.services import (
    web_leases_hold,
    web_leases_release,
    web_session_state_set,
    web_session_stopped,
)

pytestmark = pytest.mark.django_db
A, B = "pod-0:11:aaaa", "pod-1:22:bbbb"


def everywhere(_: int) -> bool:
    return True  # a shared profiles volume: every process has every profile


def nowhere(_: int) -> bool:
    return False


def held(owner: str, has_profile: Any = everywhere) -> list[int]:
    return [channel.pk for channel in web_leases_hold(owner=owner, has_profile=has_profile)]


@pytest.fixture
def channels(postgres: None, web_channel: Channel, settings: Any) -> list[Channel]:
    settings.WHATSAPP_WEB_LEASE_SECONDS = 60
    settings.WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS = 60
    settings.WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER = 0
    other = ChannelFactory.create(workspace=web_channel.workspace, kind=Channel.Kind.WEB, phone_number_id="")
    return [web_channel, other]


def test_the_first_owner_takes_every_channel_and_the_second_gets_none(channels: list[Channel]) -> None:
    assert held(A) == [c.pk for c in channels]
    assert held(B) == []
    assert held(A) == [c.pk for c in channels]  # renewed, still A's
    rows = WebSession.objects.filter(channel__in=channels)
    assert {r.owner for r in rows} == {A}
    assert all(r.lease_until is not None for r in rows)


def test_a_cap_per_process_leaves_the_rest_to_another(channels: list[Channel], settings: Any) -> None:
    settings.WHATSAPP_WEB_MAX_CHANNELS_PER_WORKER = 1

    assert held(A) == [channels[0].pk]
    assert held(B) == [channels[1].pk]
    assert held(A) == [channels[0].pk]


def test_an_expired_lease_is_taken_over_and_the_old_owner_loses_it(
    channels: list[Channel], settings: Any
) -> None:
    settings.WHATSAPP_WEB_LEASE_SECONDS = 0.5
    assert len(held(A)) == 2

    assert held(B) == []  # still A's
    time.sleep(0.7)  # A stopped renewing (killed)
    assert held(B) == [c.pk for c in channels]
    assert held(A) == []  # back, A finds them gone and does not take them back
    assert set(WebSession.objects.values_list("owner", flat=True)) == {B}


def test_a_released_channel_is_taken_at_once(channels: list[Channel]) -> None:
    held(A)

    assert web_leases_release(owner=A) == 2

    assert held(B) == [c.pk for c in channels]


def test_without_the_profile_a_process_waits_for_the_one_that_has_it(
    channels: list[Channel], settings: Any
) -> None:
    settings.WHATSAPP_WEB_LEASE_SECONDS = 0.5
    settings.WHATSAPP_WEB_PROFILE_PREFERENCE_SECONDS = 1.0
    held(A)
    web_leases_release(owner=A)  # a clean restart of the pod holding the profiles

    assert held(B, nowhere) == []  # B would need a new QR scan: it leaves them a while
    assert held(A) == [c.pk for c in channels]
    time.sleep(0.7)  # A dies for good: past the lease and the preference, B takes them
    assert held(B, nowhere) == []
    time.sleep(1.0)
    assert held(B, nowhere) == [c.pk for c in channels]


def test_an_inactive_channel_is_given_back(channels: list[Channel]) -> None:
    held(A)
    Channel.objects.filter(pk=channels[1].pk).update(is_active=False)

    assert held(A) == [channels[0].pk]
    assert WebSession.objects.get(channel=channels[1]).owner == ""


def test_a_page_closed_after_a_takeover_does_not_overwrite_the_new_owners_state(
    channels: list[Channel], settings: Any
) -> None:
    settings.WHATSAPP_WEB_LEASE_SECONDS = 0.3
    held(A)
    time.sleep(0.5)
    held(B)
    web_session_state_set(channel=channels[0], state=WebSession.State.CONNECTED)

    web_session_stopped(channel=channels[0], owner=A)
    assert WebSession.objects.get(channel=channels[0]).state == WebSession.State.CONNECTED

    web_session_stopped(channel=channels[0], owner=B)
    assert WebSession.objects.get(channel=channels[0]).state == WebSession.State.STOPPED


def test_a_clean_worker_shutdown_gives_the_channels_back(
    channels: list[Channel], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.whatsapp_web import browser, tasks

    running = browser.Driver(owner=A)
    assert running._channels_held().keys() == {c.pk for c in channels}
    monkeypatch.setattr(browser, "_driver", running)

    tasks._release_on_shutdown()

    assert set(WebSession.objects.values_list("owner", flat=True)) == {""}
    assert held(B) == [c.pk for c in channels]
