"""Per-request counters and histograms kept as plain numbers, exposed at scrape time.

prometheus_client's collectors take a lock and validate on every ``inc``/``observe``; a
request touched about ten of them, which cost as much as the rest of a cache hit. The gateway's
event loop is the only writer, so these keep a dict of numbers per label set and turn it into
metric families only when ``/metrics`` is read. Same names, types and samples as the
prometheus_client classes they replace (``_total``, ``_bucket``/``_count``/``_sum``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

Labels = tuple[str, ...]


class Tally(Collector):
    """A labelled counter: ``inc(*label_values)``."""

    def __init__(
        self, name: str, doc: str, labels: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self.name, self.doc, self.label_names = name, doc, list(labels)
        self.counts: dict[Labels, float] = {}
        registry.register(self)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        counts = self.counts
        counts[values] = counts.get(values, 0.0) + amount

    def add(self, values: Labels) -> None:
        """``inc(*values)`` for label values already in a tuple."""
        counts = self.counts
        counts[values] = counts.get(values, 0.0) + 1.0

    def value(self, *values: str) -> float:
        return self.counts.get(values, 0.0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.label_names)
        for values, count in list(self.counts.items()):
            family.add_metric(list(values), count)
        yield family


class Spread(Collector):
    """A labelled histogram: ``observe(value, *label_values)``."""

    def __init__(
        self,
        name: str,
        doc: str,
        labels: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name, self.doc, self.label_names = name, doc, list(labels)
        self.bounds = tuple(sorted(buckets))
        # per label set: one count per bound plus the overflow (+Inf), then the sum
        self.series: dict[Labels, list[float]] = {}
        registry.register(self)

    def observe(self, value: float, *values: str) -> None:
        row = self.series.get(values)
        if row is None:
            row = self.series[values] = [0.0] * (len(self.bounds) + 2)
        row[bisect.bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def count(self, *values: str) -> float:
        row = self.series.get(values)
        return sum(row[:-1]) if row else 0.0

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        for values, row in list(self.series.items()):
            cumulative, buckets = 0.0, []
            for bound, n in zip((*self.bounds, float("inf")), row[:-1], strict=True):
                cumulative += n
                buckets.append((_le(bound), cumulative))
            family.add_metric(list(values), buckets, sum_value=row[-1])
        yield family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
