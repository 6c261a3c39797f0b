"""The command channel between the processes that send (the outbound sender, any worker) and the one
process that owns a channel's browser (worker-web): a Redis list per channel, one reply list per command.

A sender pushes a command and waits for its reply. When no reply comes in time it takes its command
back: if it is still in the list the browser never saw it (nothing was sent, a retry is safe); if it is
gone the browser took it and may have sent it (the outcome is unknown and must not be sent again).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection

PREFIX = "wweb"
REPLY_KEEP_SECONDS = 300
WAIT_SLICE = 1  # seconds per BLPOP, under the Redis connection's socket timeout


class NoCommandChannel(RuntimeError):
    """WhatsApp Web needs Redis: the browser lives in another process."""


class NotTaken(RuntimeError):
    """The browser did not take the command in time; it was withdrawn and never ran."""


class NoReply(RuntimeError):
    """The browser took the command but did not answer in time: it may have run."""


@dataclass(frozen=True)
class Command:
    id: str
    op: str
    args: dict[str, Any]
    deadline: float  # time.time() after which the sender no longer waits


def _redis() -> Any:
    if not settings.REDIS_URL:
        raise NoCommandChannel("WhatsApp Web channels need REDIS_URL (the browser runs in worker-web)")
    return get_redis_connection("default")


def queue_key(channel_id: int) -> str:
    return f"{PREFIX}:cmd:{channel_id}"


def _reply_key(command_id: str) -> str:
    return f"{PREFIX}:reply:{command_id}"


def command_call(*, channel_id: int, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run `op` in the channel's browser and return its answer. Raises NotTaken or NoReply."""
    client = _redis()
    command = Command(id=uuid.uuid4().hex, op=op, args=args, deadline=time.time() + timeout)
    encoded = json.dumps(command.__dict__)
    client.lpush(queue_key(channel_id), encoded)
    # In slices of one second: the shared connection gives up reading after SOCKET_TIMEOUT (2 s), and a
    # single long BLPOP raised TimeoutError on every send that typed for longer (the message left, but
    # its sender never learnt it).
    answer, until = None, time.monotonic() + timeout
    while answer is None and time.monotonic() < until:
        answer = client.blpop([_reply_key(command.id)], timeout=WAIT_SLICE)
    if answer is None:
        if client.lrem(queue_key(channel_id), 1, encoded):
            raise NotTaken(f"{op} not taken by the browser in {timeout:.0f} s")
        raise NoReply(f"{op} taken by the browser but not answered in {timeout:.0f} s")
    reply: dict[str, Any] = json.loads(answer[1])
    return reply


def command_post(*, channel_id: int, op: str, args: dict[str, Any], ttl: float) -> None:
    """Hand `op` to the browser without waiting (read receipts)."""
    command = Command(id=uuid.uuid4().hex, op=op, args=args, deadline=time.time() + ttl)
    _redis().lpush(queue_key(channel_id), json.dumps(command.__dict__))


def command_take(*, channel_id: int) -> Command | None:
    """The oldest command for the channel (worker-web only), skipping those nobody waits for any more."""
    client = _redis()
    while raw := client.rpop(queue_key(channel_id)):
        data = json.loads(raw)
        command = Command(id=data["id"], op=data["op"], args=data["args"], deadline=data["deadline"])
        if command.deadline > time.time():
            return command
    return None


def command_reply(*, command: Command, answer: dict[str, Any]) -> None:
    client = _redis()
    key = _reply_key(command.id)
    client.lpush(key, json.dumps(answer))
    client.expire(key, REPLY_KEEP_SECONDS)
