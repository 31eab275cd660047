"""Bound the exchanges in flight upstream; past the bound, wait a little, then answer 503.

The innermost stage: a slot is held from sending upstream until the reply's body is read or its
stream released, which is exactly when aiohttp frees the pooled connection. The connector has
the same limit, so a request that holds a slot never queues again inside aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.errors import GatewayError
from gateway.model import CallNext, Exchange, Reply, Stage
from gateway.telemetry.metrics import Metrics


def upstream_busy(limit: int, waited: float) -> GatewayError:
    return GatewayError(
        503,
        "upstream_busy",
        f"All {limit} upstream connections stayed busy for {waited:g}s; try again shortly.",
        headers={"Retry-After": "1"},
        detail={"retry_after": 1},
    )


def connection_gate(limit: int, max_wait: float, metrics: Metrics) -> Stage:
    slots = asyncio.Semaphore(limit)

    async def stage(exchange: Exchange, call_next: CallNext) -> Reply:
        if slots.locked():  # only a wait needs a deadline (and its timer)
            try:
                async with asyncio.timeout(max_wait):
                    await slots.acquire()
            except TimeoutError:
                metrics.rejections.labels("upstream_busy").inc()
                raise upstream_busy(limit, max_wait) from None
        else:
            await slots.acquire()  # free: returns at once
        try:
            reply = await call_next(exchange)
        except BaseException:
            slots.release()
            raise
        if reply.stream is None:
            slots.release()
            return reply
        reply.release = _also(reply.release, slots)
        return reply

    return stage


def _also(release: Callable[[], None] | None, slots: asyncio.Semaphore) -> Callable[[], None]:
    """The stream's own release, then the slot's, once however often it is called."""
    done = False

    def run() -> None:
        nonlocal done
        if release is not None:
            release()
        if not done:
            done = True
            slots.release()

    return run
