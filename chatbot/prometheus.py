"""What one /metrics scrape shows, whichever gunicorn worker answers it.

prometheus_client keeps a metric's values in the process that records them, so with several web
workers each scrape used to show one worker's counters (106, 107, 58, ...). In multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by chatbot/gunicorn.conf.py before anything imports prometheus_client)
every worker writes its counters and histograms to files in that folder and a scrape sums them.

Collectors computed at scrape time (circuit states, the metrics shared through Redis, queue depths)
are no process's samples: they are registered here as "live" and added to the summing registry.
Every series of our own is named `chatbot_...`; django-prometheus keeps its `django_...` names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

PREFIX = "chatbot_"

_LIVE: list[LiveCollector] = []


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class LiveCollector(Collector):
    """A collector computed at scrape time. `describe` is empty so that registering it never reads
    Redis or the database (the registry would call `collect` under its lock, and a metric created
    meanwhile, by a cache backend's first import, would wait on that lock for ever)."""

    def describe(self) -> Iterable[Metric]:
        return []


def register_live(collector: LiveCollector) -> None:
    """A collector read at each scrape; shown whether or not the web runs several workers."""
    _LIVE.append(collector)
    try:
        REGISTRY.register(collector)
    except ValueError:  # a name already registered (module imported twice under another name)
        _LIVE.remove(collector)


def scrape_registry() -> CollectorRegistry:
    if not multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in _LIVE:
        registry.register(collector)
    return registry
