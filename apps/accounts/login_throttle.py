"""Login attempts counted per account and per IP, reserved before any password is checked.

Each attempt first takes one hit on the account's counter and on the IP's, atomically, in the
store every process shares (`chatbot.ratelimit`: Redis, or locked files in DATA_DIR without
it); a full counter refuses the attempt unchecked. So N parallel guesses check at most `limit`
passwords, and two web workers do not double the limit. The account is the user the name
resolves to (any spelling or the e-mail: one counter), else the folded name itself. A success
clears the account's counter and gives its IP hit back: what stays counted are failures.
Windows slide (`LOGIN_FAILURE_LIMITS`: (limit, seconds) per "account" and "ip").
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass

from django.conf import settings

from apps.accounts.login_names import fold
from apps.accounts.selectors import user_for_login
from chatbot import ratelimit
from chatbot.exceptions import TooManyRequests

PREFIX = "login:"
AREA = "login"  # embedded mode: its own folder under DATA_DIR/ratelimit


@dataclass(frozen=True)
class Attempt:
    account_key: str
    ip_key: str | None
    hit_id: str


def account_key(identifier: str) -> str:
    user = user_for_login(identifier)
    if user is not None:
        return f"{PREFIX}account:user:{user.pk}"
    return f"{PREFIX}account:name:{hashlib.sha256(fold(identifier).encode()).hexdigest()[:32]}"


def begin(*, identifier: str, ip: str | None) -> Attempt:
    """Reserve one attempt, or raise TooManyRequests (with `retry_after`) before any check."""
    store = ratelimit.limiter(AREA)
    attempt = Attempt(account_key(identifier), f"{PREFIX}ip:{ip}" if ip else None, uuid.uuid4().hex)
    if attempt.ip_key:
        limit, window = settings.LOGIN_FAILURE_LIMITS["ip"]
        decision = store.hit(attempt.ip_key, limit, window, hit_id=attempt.hit_id)
        if not decision.allowed:
            raise _refused(decision)
    limit, window = settings.LOGIN_FAILURE_LIMITS["account"]
    decision = store.hit(attempt.account_key, limit, window, hit_id=attempt.hit_id)
    if not decision.allowed:
        if attempt.ip_key:  # no password was checked: this attempt costs the IP nothing
            store.forget(attempt.ip_key, attempt.hit_id)
        raise _refused(decision)
    return attempt


def succeeded(attempt: Attempt) -> None:
    store = ratelimit.limiter(AREA)
    store.forget(attempt.account_key)
    if attempt.ip_key:
        store.forget(attempt.ip_key, attempt.hit_id)


def _refused(decision: ratelimit.Decision) -> TooManyRequests:
    return TooManyRequests(
        "Too many failed logins; try again later.", retry_after=max(1, math.ceil(decision.retry_after))
    )


def clear(*, identifier: str) -> None:
    """Unlock one account (operations: a user locked out by someone else's guesses)."""
    ratelimit.limiter(AREA).forget(account_key(identifier))


def clear_all() -> None:
    """Unlock every account and IP (operations, after an incident; the test suite between tests)."""
    store = ratelimit.limiter(AREA)
    if isinstance(store, ratelimit.RedisLimiter):
        store.forget_matching(f"{PREFIX}*")
    elif isinstance(store, ratelimit.FileLimiter):
        store.clear()
