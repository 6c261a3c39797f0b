"""worker-web's task: drive the WhatsApp Web pages for a slice of time, then hand over to the next slice.

The browser outlives the task (it is this process's), so a slice boundary costs nothing but a turn of
the queue. One driver runs at a time in the installation (a Redis lease): two would open the same
profiles. Beat starts the chain (every minute, a no-op while it runs), each slice queues the next.
"""

from __future__ import annotations

import logging
import os
import socket

from django.conf import settings
from django_redis import get_redis_connection

from apps.whatsapp_web.browser import driver
from apps.whatsapp_web.selectors import web_channels_to_run
from celery_app import app

logger = logging.getLogger(__name__)

LEASE_KEY = "wweb:driver"


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease(seconds: float) -> bool:
    """Take or renew the driver's lease for this process; False when another process holds it."""
    client = get_redis_connection("default")
    ttl = int(seconds) + 60
    if client.set(LEASE_KEY, _owner(), nx=True, ex=ttl):
        return True
    holder = client.get(LEASE_KEY)
    if holder is not None and holder.decode() == _owner():
        client.expire(LEASE_KEY, ttl)
        return True
    return False


@app.task(name="whatsapp_web.sessions_drive")
def web_sessions_drive(chain: bool = True) -> None:
    if not settings.REDIS_URL:
        if web_channels_to_run().exists():
            logger.error("WhatsApp Web needs REDIS_URL: its browser takes commands through Redis")
        return
    seconds = settings.WHATSAPP_WEB_SLICE
    if not _lease(seconds):
        return
    driver().run(seconds)
    if chain:
        web_sessions_drive.apply_async(kwargs={"chain": True}, expires=120)
