"""Prometheus metrics that any process records and one /metrics shows.

prometheus_client keeps its metrics inside the process that records them. The LLM calls run in
Celery workers, which serve no HTTP, so their histograms never reached /metrics (served by the web
processes, each with its own copy). These metrics live where the circuit breakers live: one Redis
hash per metric, added to with HINCRBYFLOAT (shared by every machine), or without Redis one small
file per metric under DATA_DIR changed under an exclusive lock (every process of this machine).
A collector reads them on each scrape. Recording never raises: a sample lost while Redis restarts
is better than a reply lost over a metric.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from chatbot import prometheus, shared_state

logger = logging.getLogger(__name__)

_SEP = "\x1f"  # between label values and the part (a bucket's bound, "sum" or "count") in a field


class _Store(Protocol):
    def add(self, metric: str, increments: dict[str, float]) -> None: ...

    def read(self, metric: str) -> dict[str, float]: ...


class RedisStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    def add(self, metric: str, increments: dict[str, float]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for field, amount in increments.items():
            pipe.hincrbyfloat(f"metrics:{metric}", field, amount)
        pipe.execute()

    def read(self, metric: str) -> dict[str, float]:
        raw = self._client.hgetall(f"metrics:{metric}")
        return {(f.decode() if isinstance(f, bytes) else f): float(v) for f, v in raw.items()}


class FileStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files = shared_state.JsonFiles(folder, suffix=".json", hashed=False)

    def add(self, metric: str, increments: dict[str, float]) -> None:
        def change(values: dict[str, float] | None) -> tuple[None, dict[str, float]]:
            values = dict(values or {})
            for field, amount in increments.items():
                values[field] = values.get(field, 0.0) + amount
            return None, values

        self._files.update(metric, change)

    def read(self, metric: str) -> dict[str, float]:
        values: dict[str, float] = self._files.read(metric) or {}
        return values


def _store() -> _Store:
    return shared_state.select("metrics", redis=RedisStore, files=FileStore)


class _Shared:
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *, exported: bool = True
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        if exported:  # tests make private ones
            if not name.startswith(prometheus.PREFIX):
                raise ValueError(f"{name}: the project's series are named {prometheus.PREFIX}...")
            _METRICS.append(self)

    def _add(self, increments: dict[str, float]) -> None:
        try:
            _store().add(self.name, increments)
        except Exception:  # Redis down, disk full: the caller's work matters more than the sample
            logger.warning("metric %s not recorded", self.name, exc_info=True)

    def _key(self, labels: Sequence[str]) -> str:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return _SEP.join(str(value) for value in labels)

    def collect(self) -> Metric:
        raise NotImplementedError


class SharedCounter(_Shared):
    """Exported as `<name>_total`, like prometheus_client's Counter."""

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._add({self._key(labels): amount})

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, value in sorted(_store().read(self.name).items()):
            family.add_metric(key.split(_SEP) if self.labelnames else [], value)
        return family


class SharedHistogram(_Shared):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        *,
        exported: bool = True,
    ) -> None:
        super().__init__(name, documentation, labelnames, exported=exported)
        self.buckets = sorted(float(b) for b in buckets if not math.isinf(b))

    def observe(self, *labels: str, value: float) -> None:
        prefix = [self._key(labels)] if self.labelnames else []
        bound = next((b for b in self.buckets if value <= b), math.inf)
        self._add(
            {
                _SEP.join([*prefix, "le", repr(bound)]): 1.0,
                _SEP.join([*prefix, "sum"]): value,
                _SEP.join([*prefix, "count"]): 1.0,
            }
        )

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        series: dict[str, dict[str, float]] = defaultdict(dict)
        for field, value in _store().read(self.name).items():
            pieces = field.split(_SEP)
            width = len(self.labelnames)
            series[_SEP.join(pieces[:width])][_SEP.join(pieces[width:])] = value
        for key, parts in sorted(series.items()):
            cumulative, buckets = 0.0, []
            for bound in [*self.buckets, math.inf]:
                cumulative += parts.get(_SEP.join(["le", repr(bound)]), 0.0)
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric(key.split(_SEP) if self.labelnames else [], buckets, parts.get("sum", 0.0))
        return family


_METRICS: list[_Shared] = []


class _SharedCollector(prometheus.LiveCollector):
    def collect(self) -> Iterator[Metric]:
        for metric in _METRICS:
            try:
                yield metric.collect()
            except Exception:  # a scrape must not fail because Redis blinked
                logger.warning("shared metric %s unavailable for /metrics", metric.name, exc_info=True)


prometheus.register_live(_SharedCollector())
