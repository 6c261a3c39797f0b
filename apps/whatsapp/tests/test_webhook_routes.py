"""The webhook's channel routes kept in memory: no query for a known number, and any change to a channel
(its secret above all) holds from the very next delivery."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.core.management import call_command

from apps.conversations.models import Message
from apps.whatsapp import route_cache
from apps.whatsapp.models import Channel
from apps.whatsapp.services import channel_delete, channel_update
from apps.whatsapp.tests.test_webhook import (
    INBOUND,
    RESTAURANT,
    SHOP,
    SHOP_SECRET,
    channel_create,
    post,
    text_delivery,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),  # changes are announced after a real commit
    pytest.mark.usefixtures("tasks_captured"),
]


def listening() -> int:
    """The process's generation once its listener has subscribed (deliveries before read the database)
    and has heard every announcement made so far (a channel created by the test announces itself, and
    hearing that late would make the process forget a route the test just warmed)."""
    deadline = time.monotonic() + 5
    while route_cache.route_cache_generation() is None:
        assert time.monotonic() < deadline, "the route listener did not subscribe"
        time.sleep(0.01)
    announce_and_wait()
    generation = route_cache.route_cache_generation()
    assert generation is not None
    return generation


def announce_and_wait() -> None:
    """Announce a change as another process would, and wait until this process's listener heard it."""
    token = f"probe-{uuid.uuid4()}".encode()
    redis.Redis.from_url(django_settings.REDIS_URL).publish(route_cache.announce_channel(), token)
    deadline = time.monotonic() + 5
    while route_cache._state.last_heard != token:
        assert time.monotonic() < deadline, "the route listener did not hear the announcement"
        time.sleep(0.01)


@pytest.mark.usefixtures("redis_url")
def test_a_known_number_costs_one_insert_and_no_channel_query_or_transaction(
    django_assert_num_queries, tasks_captured
):
    channel = channel_create()
    listening()
    post(text_delivery((SHOP, "wamid.WARM", "warms the route")))

    with django_assert_num_queries(1) as captured:
        response = post(text_delivery((SHOP, "wamid.HOT", "hello")))

    assert response.status_code == 200
    assert captured.captured_queries[0]["sql"].startswith('INSERT INTO "conversations_message"')
    assert "ON CONFLICT DO NOTHING RETURNING" in captured.captured_queries[0]["sql"]
    hot = Message.objects.get(wamid="wamid.HOT")
    assert (hot.channel_id, hot.workspace_id, hot.body) == (channel.pk, channel.workspace_id, "hello")
    assert tasks_captured.ids(*INBOUND) == list(Message.objects.order_by("pk").values_list("pk", flat=True))


def test_a_repeated_delivery_of_a_cached_number_is_stored_and_enqueued_once(tasks_captured):
    channel_create()
    first = post(text_delivery((SHOP, "wamid.ONCE", "once")))
    again = post(text_delivery((SHOP, "wamid.ONCE", "once")))

    assert (first.status_code, again.status_code) == (200, 200)
    assert Message.objects.filter(wamid="wamid.ONCE").count() == 1
    assert tasks_captured.ids(*INBOUND) == [Message.objects.get().pk]


def test_a_rotated_app_secret_refuses_the_old_one_on_the_next_delivery():
    channel = channel_create()
    assert post(text_delivery((SHOP, "wamid.BEFORE", "before"))).status_code == 200

    channel_update(
        channel=Channel.objects.get(pk=channel.pk), data={"app_secret": "rotated-after-a-leak"}, actor_id=None
    )
    with_old = post(text_delivery((SHOP, "wamid.LEAKED", "forged")))
    with_new = post(text_delivery((SHOP, "wamid.AFTER", "after")), secret="rotated-after-a-leak")

    assert with_old.status_code == 403
    assert with_old.json()["error"]["code"] == "signature_invalid"
    assert with_new.status_code == 200
    assert sorted(Message.objects.values_list("wamid", flat=True)) == ["wamid.AFTER", "wamid.BEFORE"]


@pytest.mark.usefixtures("redis_url")
def test_a_change_announced_by_another_process_is_seen_on_the_next_delivery():
    channel = channel_create()
    before = listening()
    assert post(text_delivery((SHOP, "wamid.BEFORE", "before"))).status_code == 200
    # Another process (the API, the admin) deactivates the channel: here only the row changes and the
    # announcement arrives over Redis; this process's memory is left as it was.
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    announce_and_wait()
    assert route_cache.route_cache_generation() != before

    response = post(text_delivery((SHOP, "wamid.INACTIVE", "skipped")))

    assert response.status_code == 200
    assert not Message.objects.filter(wamid="wamid.INACTIVE").exists()


@pytest.mark.usefixtures("redis_url")
def test_memory_does_not_serve_while_the_listener_is_not_subscribed(django_assert_num_queries):
    channel_create()
    listening()
    post(text_delivery((SHOP, "wamid.WARM", "warm")))
    route_cache._state.listening = False  # as after a lost Redis connection, before re-subscribing
    try:
        with django_assert_num_queries(2):  # the channel is read, then the INSERT
            response = post(text_delivery((SHOP, "wamid.COLD", "cold")))
    finally:
        route_cache._state.listening = True

    assert response.status_code == 200


def test_a_deactivated_then_deleted_channel_takes_nothing_more():
    channel = channel_create()
    assert post(text_delivery((SHOP, "wamid.BEFORE", "before"))).status_code == 200

    channel_update(channel=Channel.objects.get(pk=channel.pk), data={"is_active": False}, actor_id=None)
    inactive = post(text_delivery((SHOP, "wamid.INACTIVE", "skipped")))
    channel_delete(channel=Channel.objects.get(pk=channel.pk), actor_id=None)
    deleted = post(text_delivery((SHOP, "wamid.DELETED", "skipped")))

    assert (inactive.status_code, deleted.status_code) == (200, 403)  # no channel: the platform secret only
    assert not Message.objects.exists()


def test_a_number_unknown_when_cached_is_routed_once_a_channel_takes_it():
    channel_create()
    skipped = post(text_delivery((RESTAURANT, "wamid.EARLY", "nobody")), secret=SHOP_SECRET)

    restaurant = channel_create(RESTAURANT, app_secret=SHOP_SECRET)
    stored = post(text_delivery((RESTAURANT, "wamid.LATER", "restaurant")), secret=SHOP_SECRET)

    assert (skipped.status_code, stored.status_code) == (403, 200)
    assert list(Message.objects.values_list("wamid", "channel_id")) == [("wamid.LATER", restaurant.pk)]


@pytest.mark.usefixtures("redis_url")
def test_key_rotation_forgets_the_routes(settings, django_assert_num_queries):
    channel_create()
    listening()
    post(text_delivery((SHOP, "wamid.BEFORE", "before")))
    with django_assert_num_queries(1):
        post(text_delivery((SHOP, "wamid.CACHED", "cached")))

    call_command("rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with django_assert_num_queries(2):  # the channel is read again, then the INSERT
        response = post(text_delivery((SHOP, "wamid.AFTER", "after")))

    assert response.status_code == 200


def test_without_redis_every_delivery_reads_the_channel(settings, django_assert_num_queries):
    settings.REDIS_URL = ""
    channel_create()
    post(text_delivery((SHOP, "wamid.FIRST", "first")))

    with django_assert_num_queries(2):
        response = post(text_delivery((SHOP, "wamid.SECOND", "second")))

    assert response.status_code == 200


@pytest.mark.usefixtures("redis_url")
def test_a_change_made_while_the_listener_was_cut_off_is_seen_after_it_reconnects():
    channel = channel_create()
    listening()
    assert post(text_delivery((SHOP, "wamid.BEFORE", "before"))).status_code == 200
    server = redis.Redis.from_url(django_settings.REDIS_URL)
    name = f"channel-route-listener-{os.getpid()}"
    [listener] = [client for client in server.client_list() if client["name"] == name]

    # The listener's connection drops, and meanwhile the secret changes where no announcement reaches
    # this process (the row only).
    server.client_kill_filter(_id=listener["id"])
    deadline = time.monotonic() + 5
    while route_cache._state.listening and time.monotonic() < deadline:
        time.sleep(0.01)
    Channel.objects.filter(pk=channel.pk).update(is_active=False)
    during = post(text_delivery((SHOP, "wamid.DURING", "skipped")))
    listening()
    after = post(text_delivery((SHOP, "wamid.AFTER", "skipped")))

    assert (during.status_code, after.status_code) == (200, 200)
    assert list(Message.objects.values_list("wamid", flat=True)) == ["wamid.BEFORE"]
