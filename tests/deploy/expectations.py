"""Which dashboard panels must show data after the e2e traffic: the one list to widen.

Every panel title in the dashboard is in exactly one of the two sets (a test enforces it), so a
new panel has to be classified. When a branch that feeds a metric merges, move its panels from
``AWAITING_WIRING`` to ``MUST_HAVE_DATA``: nothing else changes.
"""

from __future__ import annotations

MUST_HAVE_DATA: frozenset[str] = frozenset(
    {
        # Overview
        "Replicas", "Request rate", "5xx ratio", "Upstream 429s", "In flight", "Mode",
        "Requests by status class", "Request latency", "Requests by route",
        "Local rejections by reason", "Requests by method",
        # Quota: unlabelled gauges and the 429 counter exist from the start
        "Queue depth", "Blocked accounts", "Upstream 429 rate",
        # Cache
        "Answers by X-Cache", "Cache hit ratio", "Cache outcomes", "Cache entries", "Cache bytes",
        # Replay
        "Cassette interactions", "Replay misses", "Recorded",
        # Upstream
        "Upstream latency", "Upstream responses", "Upstream errors",
        # Infrastructure
        "Redis reachable", "Resident memory", "CPU", "Open file descriptors",
    }
)  # fmt: skip

# Declared in gateway/telemetry/metrics.py but incremented only by the quota, cache and
# cassette branches. Replay panels also need a record- and a replay-mode replica with traffic
# (the e2e test already runs them). A trial merge of `quota` and `cache` into this branch lit
# every panel here except the three cassette ones (Degraded mode via the cache's Redis check).
AWAITING_WIRING: frozenset[str] = frozenset(
    {
        # quota branch: quota_utilisation_ratio, quota_wait_seconds, quota_reservations_total
        "Quota utilisation", "Quota wait", "Reservations by outcome",
        # quota branch (limiter) and cache branch set harvestgw_degraded{component}
        "Degraded mode",
    }
)  # fmt: skip
