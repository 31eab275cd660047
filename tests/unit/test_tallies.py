"""The plain-number metrics expose exactly what prometheus_client's own classes would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.metrics import LATENCY_BUCKETS
from gateway.telemetry.tallies import Spread, Tally


def samples(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items())), round(s.value, 9))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_spread_matches_a_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    spread = Spread("t_seconds", "doc", ["method"], LATENCY_BUCKETS, ours)
    histogram = Histogram("t_seconds", "doc", ["method"], buckets=LATENCY_BUCKETS, registry=theirs)
    rng = random.Random(7)
    values = [rng.choice(LATENCY_BUCKETS) for _ in range(50)]  # exactly on a bound: le is <=
    values += [rng.uniform(0, 200) for _ in range(500)] + [0.0, 1e9]
    for value in values:
        method = rng.choice(["GET", "POST"])
        spread.observe(value, method)
        histogram.labels(method).observe(value)
    assert samples(ours) == samples(theirs)
    assert spread.count("GET") + spread.count("POST") == len(values)


def test_tally_matches_a_prometheus_counter() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = Tally("t_requests", "doc", ["route", "status_class"], ours)
    counter = Counter("t_requests", "doc", ["route", "status_class"], registry=theirs)
    for route, status in [("/v2/a", "2xx"), ("/v2/a", "2xx"), ("/v2/b", "5xx")]:
        tally.inc(route, status)
        counter.labels(route, status).inc()
    assert samples(ours) == samples(theirs)
    assert tally.value("/v2/a", "2xx") == 2
    assert tally.value("/v2/c", "2xx") == 0
