"""worker-web's task: drive the WhatsApp Web pages for a slice of time, then hand over to the next slice.

The browser outlives the task (it is this process's), so a slice boundary costs nothing but a turn of
the queue. Several worker-web processes may run: each drives the channels it holds the lease of
(services.web_leases_hold), so no channel is opened twice.

Each process keeps its own chain of slices: a slice queues the next one on the process's own queue
(Celery's worker_direct queue, `<node name>.dq2`), so every process is stepped again within a slice and
keeps renewing its leases; a chain through the shared queue could land on another process and leave
this one's pages unattended while its leases run out. Beat kicks the shared queue every minute: the
process that takes a kick starts its chain, or does nothing when its chain is running.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from celery.signals import worker_shutdown
from celery.utils import worker_direct
from django.conf import settings

from apps.whatsapp_web import browser
from apps.whatsapp_web.browser import driver
from apps.whatsapp_web.selectors import web_channels_to_run
from apps.whatsapp_web.services import web_leases_release
from celery_app import app

logger = logging.getLogger(__name__)

CHAIN_EXPIRES = 120  # seconds a queued slice waits before it is dropped (the next kick starts a chain)


class _Chain:
    """This process's chain of slices: its token, and until when it is known to be alive."""

    token = uuid.uuid4().hex
    alive_until = float("-inf")


@app.task(name="whatsapp_web.sessions_drive", bind=True)
def web_sessions_drive(self: Any, chain: bool = True, token: str = "") -> None:
    if not settings.REDIS_URL:
        if web_channels_to_run().exists():
            logger.error("WhatsApp Web needs REDIS_URL: its browser takes commands through Redis")
        return
    if token != _Chain.token and time.monotonic() < _Chain.alive_until:
        return  # a kick (or a dead chain's slice) while this process's own chain runs
    seconds = settings.WHATSAPP_WEB_SLICE
    _Chain.alive_until = time.monotonic() + seconds + CHAIN_EXPIRES
    driver().run(seconds)
    if chain:
        hostname = getattr(self.request, "hostname", None)
        options: dict[str, Any] = {"queue": worker_direct(hostname)} if hostname else {}
        web_sessions_drive.apply_async(
            kwargs={"chain": True, "token": _Chain.token}, expires=CHAIN_EXPIRES, **options
        )
        _Chain.alive_until = time.monotonic() + seconds + CHAIN_EXPIRES


@worker_shutdown.connect
def _release_on_shutdown(**_: Any) -> None:
    """A clean stop gives the channels back at once; a killed process's leases run out instead."""
    running = browser._driver
    if running is None:
        return
    try:
        running.stop()
    except Exception:  # noqa: BLE001 - the browser may be half gone at shutdown; the leases still go back
        logger.warning("worker-web: the browser did not stop cleanly", exc_info=True)
        web_leases_release(owner=running.owner)
