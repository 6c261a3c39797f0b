"""The embedded mode's in-memory cache, counting its gets in django-prometheus's django_cache_* series
like the Redis backend does. (django-prometheus's own LocMemCache returns the default for a cached
0, "" or False.)"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import locmem
from django_prometheus.cache.metrics import (
    django_cache_get_total,
    django_cache_hits_total,
    django_cache_misses_total,
)

_MISSING = object()


class LocMemCache(locmem.LocMemCache):
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        django_cache_get_total.labels(backend="locmem").inc()
        found = super().get(key, _MISSING, version)
        if found is _MISSING:
            django_cache_misses_total.labels(backend="locmem").inc()
            return default
        django_cache_hits_total.labels(backend="locmem").inc()
        return found
