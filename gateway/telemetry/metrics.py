"""The gateway's Prometheus metrics, on a registry the app owns (no module-level collectors).

Labels stay bounded: route templates (never raw paths), status classes, fixed outcome names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.exposition import generate_latest

from gateway.telemetry.tallies import Spread, Tally

# From 1 ms to 2 min: a quota wait of a minute must land in a real bucket.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0,
)  # fmt: skip
PREFIX = "harvestgw"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Info(f"{PREFIX}_build", "Gateway version and mode", registry=r)
        # Touched by every request: plain numbers, turned into samples at scrape time.
        self.requests = Tally(
            f"{PREFIX}_requests",
            "Requests answered, by route template, method, status class and cache outcome",
            ["route", "method", "status_class", "cache"],
            r,
        )
        self.request_duration = Spread(
            f"{PREFIX}_request_duration_seconds",
            "Whole-request latency as the caller sees it",
            ["method"],
            LATENCY_BUCKETS,
            r,
        )
        self.upstream_duration = Spread(
            f"{PREFIX}_upstream_duration_seconds",
            "Time from sending upstream to its response headers",
            ["upstream"],
            LATENCY_BUCKETS,
            r,
        )
        self.upstream_responses = Tally(
            f"{PREFIX}_upstream_responses",
            "Upstream responses by status class",
            ["upstream", "status_class"],
            r,
        )
        self.upstream_errors = Counter(
            f"{PREFIX}_upstream_errors",
            "Upstream failures answered 502/504 by the gateway",
            ["kind"],
            registry=r,
        )
        self.upstream_retries = Counter(
            f"{PREFIX}_upstream_retries",
            "Safe requests sent again after a transient upstream failure, by reason",
            ["reason"],
            registry=r,
        )
        self.upstream_429 = Counter(
            f"{PREFIX}_upstream_429",
            "429 responses received from Harvest (absorbed; should stay 0)",
            registry=r,
        )
        self.rejections = Counter(
            f"{PREFIX}_rejections",
            "Requests refused locally before reaching Harvest, by reason",
            ["reason"],
            registry=r,
        )
        self.quota_wait = Histogram(
            f"{PREFIX}_quota_wait_seconds",
            "Time a request waited in the queue for a quota slot",
            ["quota"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reservations = Counter(
            f"{PREFIX}_quota_reservations",
            "Quota reservations by outcome (granted, rejected, retried, released)",
            ["outcome"],
            registry=r,
        )
        self.quota_utilisation = Gauge(
            f"{PREFIX}_quota_utilisation_ratio",
            "Share of each quota used in the current window (the busiest account)",
            ["quota"],
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth", "Requests waiting for a quota slot", registry=r
        )
        self.blocked_accounts = Gauge(
            f"{PREFIX}_blocked_accounts",
            "Accounts blocked after an upstream 429",
            registry=r,
        )
        self.cache_requests = Tally(
            f"{PREFIX}_cache_requests",
            "Cache outcomes (hit, miss, stale, coalesced, bypass, revalidated)",
            ["outcome"],
            r,
        )
        self.cache_entries = Gauge(
            f"{PREFIX}_cache_entries", "Entries held by a cache tier", ["tier"], registry=r
        )
        self.cache_bytes = Gauge(
            f"{PREFIX}_cache_bytes", "Bytes held by a cache tier", ["tier"], registry=r
        )
        self.cassette_interactions = Counter(
            f"{PREFIX}_cassette_interactions",
            "Cassette traffic (replayed, missed, recorded)",
            ["outcome"],
            registry=r,
        )
        self.redis_up = Gauge(
            f"{PREFIX}_redis_up", "1 when Redis answers (or is not configured)", registry=r
        )
        self.degraded = Gauge(
            f"{PREFIX}_degraded",
            "1 while a component runs in a degraded mode",
            ["component"],
            registry=r,
        )
        self.in_flight = Gauge(f"{PREFIX}_in_flight_requests", "Requests being handled", registry=r)
        self.active = 0  # what in_flight reports: a plain number the handler moves
        self.in_flight.set_function(lambda: self.active)
        self.redis_up.set(1)
        # CPU, memory and file descriptors of this process, for the infrastructure row.
        ProcessCollector(registry=r)

    def count_request(self, route: str, method: str, status: int, cache: str) -> None:
        self.requests.add(request_labels(route, method, status, cache))

    def observe_request(self, method: str, seconds: float) -> None:
        self.request_duration.observe(seconds, method)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def request_labels(route: str, method: str, status: int, cache: str) -> tuple[str, ...]:
    """The ``requests`` counter's label values, in its label order (built ahead of time by
    the hit path, which counts with ``requests.add``)."""
    return route, method, status_class(status), cache


_CLASSES = tuple(f"{n}xx" for n in range(10))


def status_class(status: int) -> str:
    return _CLASSES[status // 100] if 0 <= status < 1000 else f"{status // 100}xx"
