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
        "Quota utilisation", "Quota wait", "Reservations by outcome", "Degraded mode",
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

# Panels whose metric is declared but not fed yet. Every panel is wired today; a new panel for a
# metric nothing increments yet goes here until it is.
AWAITING_WIRING: frozenset[str] = frozenset()
