"""Cost of one reservation through Redis (the Lua script) with a backlog already queued.

    python -m bench.quota_reserve [--queued 1000] [--calls 2000]

The account's schedule holds ``--queued`` future slots (limit 100 per 15 s, as Harvest); each
timed call reserves one more slot, and it is released again so the backlog stays the same.
Baseline in the same run: a Redis PING round trip on the same connection, and the same
reservation in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from gateway.clock import SystemClock
from gateway.core.quota import Limit
from gateway.stores.quota import InProcessQuotaStore
from gateway.stores.quota_redis import RedisQuotaStore, connect
from tests.support import redis_server

LIMITS = [Limit("general", 100, 15.0)]


async def timed(calls: int, op: object) -> list[float]:
    out = []
    for i in range(calls):
        t = time.perf_counter()
        await op(i)  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1e6)
    return out


async def main(queued: int, calls: int) -> str:
    with redis_server() as server:
        client = connect(server.url, timeout=5.0)
        store = RedisQuotaStore(client, margin=0.05)
        local = InProcessQuotaStore(SystemClock(), 0.05)
        for i in range(queued):
            await store.reserve("42", LIMITS, f"q{i}", 1e9)
            await local.reserve("42", LIMITS, f"q{i}", 1e9)

        async def ping(_: int) -> None:
            await client.ping()

        async def reserve(i: int) -> None:
            await store.reserve("42", LIMITS, f"b{i}", 1e9)
            await store.release("42", LIMITS, f"b{i}")

        async def release_only(i: int) -> None:
            await store.release("42", LIMITS, f"none{i}")

        async def in_process(i: int) -> None:
            await local.reserve("42", LIMITS, f"b{i}", 1e9)
            await local.release("42", LIMITS, f"b{i}")

        await timed(200, reserve)  # warm-up (script load, connection)
        pings = await timed(calls, ping)
        pairs = await timed(calls, reserve)
        releases = await timed(calls, release_only)
        inproc = await timed(calls, in_process)
        await client.aclose()
    reserve_us = [p - r for p, r in zip(pairs, releases, strict=True)]

    def row(name: str, xs: list[float]) -> str:
        xs = sorted(xs)
        p99 = xs[int(len(xs) * 0.99)]
        return f"| {name} | {statistics.median(xs):.0f} | {statistics.mean(xs):.0f} | {p99:.0f} |"

    return "\n".join(
        [
            f"{queued} slots queued for one account (100 per 15 s), {calls} timed calls",
            "",
            "| operation | median µs | mean µs | p99 µs |",
            "| --- | --- | --- | --- |",
            row("Redis PING round trip (baseline)", pings),
            row("reserve through Redis (Lua), release subtracted", reserve_us),
            row("reserve + release, in-process", inproc),
            "",
            f"reserve ÷ PING: {statistics.median(reserve_us) / statistics.median(pings):.1f}x",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.quota_reserve")
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=2000)
    ns = parser.parse_args()
    print(asyncio.run(main(ns.queued, ns.calls)))  # noqa: T201
