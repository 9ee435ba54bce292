"""The values behind this app's metrics: plain, per-registry families (see serving.metrics)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]


class _Family:
    """One metric family's labelled values; ``kind`` is counter, gauge or histogram."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: Sequence[str],
        kind: str,
        buckets: Sequence[float] = (),
    ) -> None:
        self.name, self.doc, self.labels, self.kind = name, doc, tuple(labels), kind
        self.buckets = tuple(float(b) for b in buckets)
        self.values: dict[Labels, float] = {}
        self.counts: dict[Labels, list[int]] = {}  # histogram: per bucket, +Inf last
        self._lock = threading.Lock()

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        with self._lock:
            self.values[labels] = self.values.get(labels, 0.0) + amount

    def set(self, labels: Labels, value: float) -> None:
        with self._lock:
            self.values[labels] = value

    def clear(self) -> None:
        with self._lock:
            self.values.clear()
            self.counts.clear()

    def observe(self, labels: Labels, value: float) -> None:
        self.observe_many(((labels, value),))

    def observe_many(self, observations: Iterable[tuple[Labels, float]]) -> None:
        """:meth:`observe` each (labels, value) pair, under one take of the lock (a request
        observes a dozen values)."""
        buckets, counts, sums = self.buckets, self.counts, self.values
        with self._lock:
            for labels, value in observations:
                per_bucket = counts.get(labels)
                if per_bucket is None:
                    per_bucket = counts[labels] = [0] * (len(buckets) + 1)
                per_bucket[bisect.bisect_left(buckets, value)] += 1  # first le >= value
                sums[labels] = sums.get(labels, 0.0) + value  # the sum

    def metric(self) -> Metric:
        with self._lock:
            values = dict(self.values)
            counts = {k: list(v) for k, v in self.counts.items()}
        if self.kind == "histogram":
            hist = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
            edges = [*(floatToGoString(b) for b in self.buckets), "+Inf"]
            for labels, per_bucket in counts.items():
                cumulative = [sum(per_bucket[: i + 1]) for i in range(len(per_bucket))]
                hist.add_metric(list(labels), list(zip(edges, cumulative, strict=True)),
                                values.get(labels, 0.0))  # fmt: skip
            return hist
        family: Metric
        if self.kind == "counter":
            family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        else:
            family = GaugeMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, value in values.items():
            family.add_metric(list(labels), value)
        return family


class _AppCollector(Collector):
    def __init__(self, families: Sequence[_Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()
