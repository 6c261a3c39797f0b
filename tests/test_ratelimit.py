from __future__ import annotations

import hashlib
import uuid

import pytest
import redis
from rest_framework.test import APIClient

from apps.accounts.tests.factories import PASSWORD, MembershipFactory
from chatbot import ratelimit
from chatbot.ratelimit import FileLimiter, RedisLimiter


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)), default=0)


# --- the algorithm, embedded (file) with an injected clock -------------------------------------------
def test_exactly_limit_hits_are_allowed_then_the_wait_is_until_the_oldest_leaves(tmp_path):
    clock = Clock()
    limiter = FileLimiter(tmp_path, clock=clock)

    decisions = []
    for _ in range(5):
        decisions.append(limiter.hit("k", 5, 10))
        clock.now += 1
    refused = limiter.hit("k", 5, 10)

    assert [d.allowed for d in decisions] == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]
    assert refused.allowed is False
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(5.0)  # first hit at 1000, now 1005, window 10
    assert refused.reset_seconds == pytest.approx(9.0)  # the last hit (1004) leaves at 1014
    clock.now = 1010.01
    assert limiter.hit("k", 5, 10).allowed is True


def test_a_burst_straddling_a_window_boundary_never_passes_twice_the_limit(tmp_path):
    clock = Clock(1_000.0)
    limiter = FileLimiter(tmp_path, clock=clock)
    allowed: list[float] = []

    # 10 attempts just before the 10 s mark and 10 just after: a fixed window would pass 20.
    for start in (1_009.9, 1_010.0):
        for i in range(10):
            clock.now = start + i * 0.001
            if limiter.hit("burst", 10, 10).allowed:
                allowed.append(clock.now)
    # Then a steady hammering for 30 s.
    for step in range(3_000):
        clock.now = 1_011.0 + step * 0.01
        if limiter.hit("burst", 10, 10).allowed:
            allowed.append(clock.now)

    assert len(allowed) == 10 + 30  # 10 in the burst, then 10 per window as the window slides
    assert _max_in_any_window(allowed, 10) == 10


def test_keys_are_independent_and_two_limiter_objects_share_the_files(tmp_path):
    clock = Clock()
    first, second = FileLimiter(tmp_path, clock=clock), FileLimiter(tmp_path, clock=clock)

    results = [first.hit("shared", 3, 60).allowed, second.hit("shared", 3, 60).allowed]
    results += [first.hit("shared", 3, 60).allowed, second.hit("shared", 3, 60).allowed]

    assert results == [True, True, True, False]
    assert first.hit("other", 3, 60).allowed is True


# --- Redis: one Lua script over a sorted set -------------------------------------------------------
@pytest.fixture
def redis_client(redis_url):
    return redis.Redis.from_url(redis_url)


def test_redis_allows_exactly_the_limit_then_refuses(redis_client):
    limiter = RedisLimiter(redis_client)
    key = f"test:{uuid.uuid4().hex}"

    decisions = [limiter.hit(key, 5, 60) for _ in range(6)]

    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 59 < decisions[-1].retry_after <= 60
    assert redis_client.zcard(f"ratelimit:{key}") == 5  # a refused hit is not remembered
    assert 0 < redis_client.pttl(f"ratelimit:{key}") <= 61_000


def test_redis_window_slides_on_the_shared_clock(redis_client, shared_clock):
    limiter = RedisLimiter(redis_client)
    key = f"test:{uuid.uuid4().hex}"
    allowed: list[float] = []

    for _ in range(160):  # a hit every 10 ms for 1.6 s
        if limiter.hit(key, 5, 0.5).allowed:
            allowed.append(shared_clock.now)
        shared_clock.advance(0.01)

    # 5 at the start of each half second as the oldest hits leave; never more in any half second.
    assert len(allowed) == 20
    assert _max_in_any_window(allowed, 0.49) == 5


def test_redis_state_is_shared_by_two_limiter_objects(redis_url):
    key = f"test:{uuid.uuid4().hex}"
    first = RedisLimiter(redis.Redis.from_url(redis_url))
    second = RedisLimiter(redis.Redis.from_url(redis_url))

    results = [first.hit(key, 3, 60).allowed, second.hit(key, 3, 60).allowed]
    results += [first.hit(key, 3, 60).allowed, second.hit(key, 3, 60).allowed]

    assert results == [True, True, True, False]


def _store(kind: str, tmp_path, redis_url_or_none):
    if kind == "file":
        return FileLimiter(tmp_path)
    return RedisLimiter(redis.Redis.from_url(redis_url_or_none))


@pytest.mark.parametrize("kind", ["file", "redis"])
def test_forget_takes_back_one_hit_by_its_id_or_every_hit_of_the_key(kind, tmp_path, request):
    limiter = _store(kind, tmp_path, request.getfixturevalue("redis_url") if kind == "redis" else None)
    key = f"test:{uuid.uuid4().hex}"
    allowed = [limiter.hit(key, 2, 60, hit_id=name).allowed for name in ("a", "b", "c")]

    limiter.forget(key, "a")
    after_one = [limiter.hit(key, 2, 60).allowed, limiter.hit(key, 2, 60).allowed]
    limiter.forget(key)
    after_all = [limiter.hit(key, 2, 60).allowed for _ in range(3)]

    assert allowed == [True, True, False]
    assert after_one == [True, False]  # "a" given back: room for exactly one
    assert after_all == [True, True, False]


def test_a_file_written_before_hits_had_ids_still_counts(tmp_path):
    clock = Clock()
    limiter = FileLimiter(tmp_path, clock=clock)
    path = tmp_path / hashlib.sha256(b"old").hexdigest()[:40]
    path.write_text("[999.0, 999.5]")

    assert [limiter.hit("old", 3, 10).allowed for _ in range(2)] == [True, False]


# --- the API: throttles and headers ------------------------------------------------------------------
@pytest.fixture
def embedded_limits(settings, tmp_path):
    settings.REDIS_URL = ""
    settings.DATA_DIR = tmp_path
    return settings


def _logged_in_client() -> APIClient:
    from apps.accounts import services

    membership = MembershipFactory.create()
    pair = services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
    return client


@pytest.mark.django_db
def test_a_user_gets_exactly_n_answers_then_429_with_headers(embedded_limits):
    embedded_limits.API_RATE_LIMIT_USER = "3/60"
    client = _logged_in_client()

    answers = [client.get("/api/auth/me") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a["X-RateLimit-Limit"] for a in answers} == {"3"}
    assert answers[0]["X-RateLimit-Reset"] == "60"
    throttled = answers[-1]
    assert 59 <= int(throttled["Retry-After"]) <= 60
    assert throttled.json()["error"]["code"] == "throttled"
    assert _logged_in_client().get("/api/auth/me").status_code == 200  # another user has their own budget


@pytest.mark.django_db
def test_anonymous_requests_are_limited_per_ip(embedded_limits):
    embedded_limits.API_RATE_LIMIT_ANON = "2/60"
    here, elsewhere = APIClient(REMOTE_ADDR="203.0.113.5"), APIClient(REMOTE_ADDR="203.0.113.6")

    codes = [here.post("/api/auth/refresh", {}, format="json").status_code for _ in range(3)]

    assert codes == [400, 400, 429]
    assert elsewhere.post("/api/auth/refresh", {}, format="json").status_code == 400


@pytest.mark.django_db
def test_probes_metrics_and_webhooks_are_never_limited(embedded_limits, settings):
    embedded_limits.API_RATE_LIMIT_ANON = "1/60"
    client = APIClient()

    metrics = {"HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}
    answers = [client.get(path, **metrics) for path in ["/healthz", "/healthz", "/metrics", "/metrics"]]
    answers += [client.post("/webhooks/whatsapp/", b"{}", content_type="application/json") for _ in range(2)]

    assert all(a.status_code != 429 for a in answers)
    assert not any("X-RateLimit-Limit" in a for a in answers)
    assert not ratelimit.exempt("/api/auth/me")


def test_a_bad_rate_setting_fails_loudly():
    from django.core.exceptions import ImproperlyConfigured

    assert ratelimit.parse_rate("300/60") == (300, 60)
    for bad in ("300", "0/60", "x/y"):
        with pytest.raises(ImproperlyConfigured):
            ratelimit.parse_rate(bad)
