"""The retry stage: send a safe request again after a transient upstream failure.

It sits outside the admission stage (cache ▸ retry ▸ admission ▸ ...), so every attempt goes
through admission again and takes a quota slot of its own: a retry is a request Harvest counts,
and admission is the only place that knows when one may be sent. Inside the cache, so only the
answer the caller finally gets is stored; and the record stage, which runs for every attempt,
asks ``superseded`` so that a cassette holds what the caller saw, not the failed tries.
What is retried, and when, is decided in ``gateway.core.retry``.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from gateway.clock import Clock
from gateway.core.quota import parse_retry_after
from gateway.core.retry import RETRYABLE_STATUSES, RetryRules, may_retry, retry_delay
from gateway.errors import GatewayError
from gateway.model import CallNext, Exchange, Reply, Stage
from gateway.telemetry.metrics import Metrics

NOTE = "retry"


@dataclass(frozen=True, slots=True)
class Attempt:
    rules: RetryRules
    number: int  # 0 for the first try
    clock: Clock

    def delay_after(self, exchange: Exchange, reply: Reply) -> float | None:
        if reply.status not in RETRYABLE_STATUSES:
            return None  # the common case: no header to parse
        retry_after = parse_retry_after(reply.headers.get("Retry-After"), self.clock.wall())
        return retry_delay(
            self.rules,
            method=exchange.method,
            attempt=self.number,
            status=reply.status,
            retry_after=retry_after,
        )


def superseded(exchange: Exchange, reply: Reply) -> bool:
    """True when ``reply`` is an attempt the retry stage will throw away and try again."""
    attempt = exchange.notes.get(NOTE)
    return isinstance(attempt, Attempt) and attempt.delay_after(exchange, reply) is not None


def retry_stage(
    rules: RetryRules,
    *,
    clock: Clock,
    metrics: Metrics,
    log: structlog.typing.FilteringBoundLogger,
) -> Stage:
    attempts = [Attempt(rules, number, clock) for number in range(rules.retries + 1)]

    async def stage(exchange: Exchange, call_next: CallNext) -> Reply:
        if rules.retries <= 0 or not may_retry(exchange.method):
            return await call_next(exchange)  # a write is sent once, whatever happens
        number = 0
        while True:
            attempt = attempts[number]  # immutable: built once, not per request
            exchange.notes[NOTE] = attempt
            exchange.notes["upstream_attempts"] = number + 1
            try:
                reply = await call_next(exchange)
            except GatewayError as exc:
                delay = retry_delay(rules, method=exchange.method, attempt=number, error=exc.code)
                if delay is None:
                    raise
                reason = exc.code
            else:
                delay = attempt.delay_after(exchange, reply)
                if delay is None:
                    return reply
                reason = str(reply.status)
                if reply.release is not None:  # hand the connection back; the body is not used
                    reply.release()
                    reply.release = None
            metrics.upstream_retries.labels(reason).inc()
            log.warning("upstream_retry", request_id=exchange.request_id, reason=reason,
                        attempt=number + 1, delay=round(delay, 3))  # fmt: skip
            await clock.sleep(delay)
            number += 1

    return stage
