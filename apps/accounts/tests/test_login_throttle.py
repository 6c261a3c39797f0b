"""Issue 10, item 4: the failed-login limit counts the account, atomically, in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import LoginSession, User
from apps.accounts.tests.factories import PASSWORD, MembershipFactory

LIMITS = {"account": (5, 900), "ip": (1000, 900)}


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password actually checked (whatever door, thread or backend checked it)."""
    checked: list[str] = []
    lock = threading.Lock()
    original: Callable[[User, str], bool] = User.check_password

    def counting(user: User, raw_password: str) -> bool:
        with lock:
            checked.append(raw_password)
        return original(user, raw_password)

    monkeypatch.setattr(User, "check_password", counting)
    return checked


def _post(username: str, password: str, ip: str = "198.51.100.20") -> int:
    client = APIClient(REMOTE_ADDR=ip)
    response = client.post("/api/auth/login", {"username": username, "password": password}, format="json")
    return response.status_code


@pytest.mark.django_db(transaction=True)
def test_forty_parallel_guesses_check_five_passwords_and_the_right_one_is_then_refused(
    postgres, redis_url, settings, password_checks
):
    settings.LOGIN_FAILURE_LIMITS = LIMITS
    membership = MembershipFactory(user__username="target")
    barrier = threading.Barrier(40)
    statuses: list[int] = []

    def guess(n: int) -> None:
        try:
            barrier.wait()
            statuses.append(_post("target", f"wrong-guess-{n:02d}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    right = _post("target", PASSWORD)

    assert len(password_checks) == 5
    assert sorted(statuses) == [401] * 5 + [429] * 35
    assert right == 429
    assert len(password_checks) == 5  # the right password was not even checked
    assert not LoginSession.objects.filter(user=membership.user).exists()


@pytest.mark.django_db
def test_name_variants_and_the_email_share_the_accounts_counter(settings, password_checks):
    """Dotless ı and long ſ fold to i and s (PostgreSQL's UPPER() calls them equal); the e-mail
    names the same account. Five failures spread over them lock every spelling."""
    settings.LOGIN_FAILURE_LIMITS = LIMITS
    membership = MembershipFactory(user__username="isabel", user__email="isabel@example.com")
    spellings = ["isabel", "ısabel", "iſabel", "ISABEL", "ıſabel@example.com"]

    failures = [_post(name, "wrong-password-1") for name in spellings]
    right = {name: _post(name, PASSWORD) for name in [*spellings, "isabel@example.com"]}

    assert failures == [401] * 5
    assert set(right.values()) == {429}, right
    assert len(password_checks) == 5
    assert not LoginSession.objects.filter(user=membership.user).exists()


@pytest.mark.django_db
def test_a_success_through_a_variant_clears_the_accounts_counter(settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (2, 900), "ip": (1000, 900)}
    MembershipFactory(user__username="isabel", user__email="isabel@example.com")
    _post("isabel", "wrong-password-1")

    ok = _post("ıſabel@example.com", PASSWORD)
    after = [_post("isabel", "wrong-password-2"), _post("ısabel", PASSWORD)]

    assert ok == 200
    assert after == [401, 200]  # one failure since the success: below the limit of 2


@pytest.mark.django_db
def test_unknown_names_are_counted_per_normalised_name(settings, password_checks):
    settings.LOGIN_FAILURE_LIMITS = {"account": (2, 900), "ip": (1000, 900)}

    statuses = [_post(name, "whatever-pass") for name in ["ghost", "GHOST", "ghoſt", "ghost2"]]

    assert statuses == [401, 401, 429, 401]
    assert password_checks == []  # nobody to check a password against


@pytest.mark.django_db
def test_successful_logins_do_not_use_up_the_ip_budget(settings):
    settings.LOGIN_FAILURE_LIMITS = {"account": (5, 900), "ip": (3, 900)}
    member = MembershipFactory()

    statuses = [_post(member.user.username, PASSWORD) for _ in range(6)]

    assert statuses == [200] * 6


_CHILD = """
import json, sys
import django
django.setup()
from apps.accounts import services
from chatbot.exceptions import TooManyRequests, Unauthorized
codes = []
for n in range(10):
    try:
        services.login(identifier="shared", password=f"wrong-{n}", ip="198.51.100.30")
    except Unauthorized:
        codes.append(401)
    except TooManyRequests:
        codes.append(429)
print(json.dumps(codes))
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_without_redis_share_one_counter(postgres, tmp_path: Path):
    """Embedded mode: two web workers are two processes; together they allow 5 guesses, not 10."""
    MembershipFactory(user__username="shared")
    db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "REDIS_URL": "",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LOGIN_MAX_FAILURES_PER_USER": "5",
        "LOGIN_MAX_FAILURES_PER_IP": "1000",
        "DJANGO_SETTINGS_MODULE": "chatbot.settings",
    }
    children = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _CHILD],
            env=env,
            cwd=django_settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]

    codes = [code for out, err in outputs for code in json.loads(out.strip().splitlines()[-1] or "[]")]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in outputs]
    assert sorted(codes) == [401] * 5 + [429] * 15
