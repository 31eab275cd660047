"""Innermost stage: time the upstream call and count what came back."""

from __future__ import annotations

from gateway.clock import Clock, millis
from gateway.model import CallNext, Exchange, Reply, Stage
from gateway.telemetry.metrics import Metrics, status_class


def upstream_timing(clock: Clock, metrics: Metrics) -> Stage:
    async def stage(exchange: Exchange, call_next: CallNext) -> Reply:
        started = clock.monotonic()
        reply = await call_next(exchange)
        elapsed = clock.monotonic() - started
        # The member itself: a StrEnum is the str "api"/"id" (C hash and equality), where
        # ``.value`` is a Python-level property read on every request.
        upstream: str = exchange.route.upstream
        exchange.notes["upstream_ms"] = millis(elapsed)
        metrics.upstream_duration.observe(elapsed, upstream)
        metrics.upstream_responses.inc(upstream, status_class(reply.status))
        if reply.status == 429:
            metrics.upstream_429.inc()
        return reply

    return stage
