"""The Redis store against a real Redis: the Lua scripts mirror the in-process store exactly."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from io import StringIO
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.clock import FakeClock, SystemClock
from gateway.core.quota import Limit
from gateway.stores.quota import InProcessQuotaStore
from gateway.stores.quota_failover import FailoverQuotaStore
from gateway.stores.quota_redis import RedisQuotaStore, connect
from gateway.telemetry.logging import make_logger
from gateway.telemetry.metrics import Metrics
from tests.support import RedisServer

pytestmark = pytest.mark.redis

US = 1_000_000


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = connect(redis_url, timeout=2.0)
    yield c
    await c.aclose()


@pytest.mark.parametrize("seed", range(6))
async def test_lua_mirrors_the_in_process_store(client: aioredis.Redis, seed: int) -> None:
    """Random reserve/claim/release/block sequences on pinned clocks: identical answers.

    Times are integer microseconds on both sides (the in-process store is unit-agnostic), so
    the comparison is exact, ties at window edges included."""
    rng = random.Random(seed)
    clock = FakeClock(start=1_700_000_000 * US)
    margin = rng.choice([0, 50_000])
    local = InProcessQuotaStore(clock, margin, poll=5_000, max_flight=120 * US)
    remote = RedisQuotaStore(
        client,
        margin=margin / US,
        prefix=f"t{uuid.uuid4().hex[:6]}",
        now_us=lambda: int(clock.monotonic()),
    )
    limits_us = [
        Limit("general", rng.randint(2, 6), rng.choice([500_000, 1_000_000])),
        Limit("reports", rng.randint(1, 3), rng.choice([2_000_000, 3_000_000])),
        Limit("batch", rng.randint(1, 4), 1_000_000),
    ]
    as_seconds = {x.name: Limit(x.name, x.limit, x.window / US) for x in limits_us}
    members: list[tuple[str, list[Limit]]] = []
    sends: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)
    flying: list[tuple[str, list[Limit]]] = []
    for step in range(250):
        clock.advance(rng.choice([0, 0, 1_000, 50_000, 250_000, 600_000]))
        account = rng.choice(["111", "222"])
        op = rng.random()
        if op < 0.75:
            chosen = [limits_us[0]] + [x for x in limits_us[1:] if rng.random() < 0.3]
            member = f"m{step}"
            max_wait = rng.choice([0, 1, 3, 10]) * US
            a = await local.reserve(account, chosen, member, max_wait)
            b = await remote.reserve(
                account, [as_seconds[x.name] for x in chosen], member, max_wait / US
            )
            assert (b.admitted, round(b.wait * US), b.used) == (a.admitted, a.wait, a.used), step
            if a.admitted:
                members.append((account + "|" + member, chosen))
        elif op < 0.85 and members:
            key, chosen = members.pop(rng.randrange(len(members)))
            account, member = key.split("|")
            sec = [as_seconds[x.name] for x in chosen]
            a_claim = await local.claim(account, chosen, member)
            b_claim = await remote.claim(account, sec, member)
            assert (b_claim is None) == (a_claim is None), step
            if a_claim is not None and b_claim is not None:
                assert round(b_claim * US) == a_claim, step
                if a_claim > 0:  # told to wait: still reserved, may be claimed again
                    members.append((key, chosen))
                else:
                    now = clock.monotonic()
                    for x in chosen:
                        # the rigorous condition: every earlier request that may still reach
                        # Harvest inside (now - W, now] leaves room for this one
                        live = [
                            e
                            for e in sends[(account, x.name)]
                            if e[1] is None or e[1] > now - x.window
                        ]
                        assert len(live) < x.limit, step
                        sends[(account, x.name)].append([now, None, member])
                    flying.append((key, chosen))
        elif op < 0.90 and flying:
            key, chosen = flying.pop(rng.randrange(len(flying)))
            account, member = key.split("|")
            await local.settle(account, chosen, member)
            await remote.settle(account, [as_seconds[x.name] for x in chosen], member)
            for x in chosen:
                for e in sends[(account, x.name)]:
                    if e[1] is None and e[2] == member:
                        e[1] = clock.monotonic()
        elif op < 0.96 and members:
            key, chosen = members.pop(rng.randrange(len(members)))
            account, member = key.split("|")
            await local.release(account, chosen, member)
            await remote.release(account, [as_seconds[x.name] for x in chosen], member)
        else:
            retry = rng.choice([None, 0.2, 1.0])
            # a 429 blocks the limits it is blamed on: all, or one (a report's)
            blamed = rng.choice([limits_us, limits_us[:1], limits_us[1:2]])
            a_block = await local.block(
                account, blamed, None if retry is None else retry * US, 700_000
            )
            b_block = await remote.block(account, [as_seconds[x.name] for x in blamed], retry, 0.7)
            assert round(b_block * US) == a_block
        for acct in ("111", "222"):
            for seen in (limits_us, limits_us[:1], limits_us[1:2]):
                sa = await local.status(acct, seen)
                sb = await remote.status(acct, [as_seconds[x.name] for x in seen])
                assert [(x.used, x.reserved) for x in sb.limits] == [
                    (x.used, x.reserved) for x in sa.limits
                ], step
                assert round(sb.blocked_for * US) == round(sa.blocked_for), step


async def test_keys_are_hash_tagged_and_expire(client: aioredis.Redis) -> None:
    store = RedisQuotaStore(client, margin=0.05, prefix="tag")
    limits = [Limit("general", 2, 1.0), Limit("reports", 1, 5.0)]
    res = await store.reserve("4242", limits, "m1", 10.0)
    assert res.admitted
    assert res.wait == 0.0
    assert res.store_now is not None
    keys = sorted(await client.keys("tag:*"))
    assert keys == ["tag:{4242}:general", "tag:{4242}:reports"]
    ttl = await client.pttl("tag:{4242}:reports")
    assert 5_000 < ttl <= 7_100
    second = await store.reserve("4242", limits, "m2", 10.0)
    assert second.wait == pytest.approx(5.05, abs=0.01)  # Redis's clock, reports limit
    assert await store.block("4242", limits, None, 2.0) == pytest.approx(2.0)
    # the queued slot at +5.05 is outside the 2 s block: it stays
    status = await store.status("4242", limits)
    assert [x.reserved for x in status.limits] == [1, 1]
    assert status.blocked_for == pytest.approx(2.0, abs=0.05)
    assert await store.claim("4242", limits, "m1") is None  # blocked now: not sent


async def test_a_block_holds_only_the_requests_that_need_its_limits(
    client: aioredis.Redis,
) -> None:
    # A report's 429 blocks the reports limit: a general-only request goes on; one that also
    # needs the reports limit waits for the block's end.
    store = RedisQuotaStore(client, prefix=f"b{uuid.uuid4().hex[:6]}")
    general, reports = Limit("general", 100, 15.0), Limit("reports", 100, 900.0)
    assert await store.block("7", [reports], 30.0, 15.0) == pytest.approx(30.0, abs=0.01)
    plain = await store.reserve("7", [general], "g1", 1.0)
    assert plain.admitted
    assert plain.wait == 0.0
    report = await store.reserve("7", [general, reports], "r1", 60.0)
    assert report.admitted
    assert report.wait == pytest.approx(30.0, abs=0.05)
    assert (await store.status("7", [general])).blocked_for == 0.0
    assert (await store.status("7", [general, reports])).blocked_for == pytest.approx(
        30.0, abs=0.05
    )
    assert await store.claim("7", [general], "g1") == 0.0  # sent now


async def test_failover_degrades_and_recovers_by_itself() -> None:
    server = RedisServer()
    server.start()
    metrics = Metrics()
    clock = SystemClock()
    limits = [Limit("general", 6, 2.0)]
    primary = RedisQuotaStore(connect(server.url, timeout=0.2), margin=0.0)
    store = FailoverQuotaStore(
        primary,
        clock=clock,
        metrics=metrics,
        log=make_logger("json", StringIO()),
        all_limits=limits,
        share=0.5,
        probe_interval=0.1,
    )
    try:
        await store.start()
        assert store.health() == (True, "redis")
        assert (await store.reserve("1", limits, "a", 5.0)).admitted
        server.stop()
        # degraded: this replica keeps its own slot and now gets half the limit (3 of 6)
        waits = [(await store.reserve("1", limits, f"b{i}", 5.0)).wait for i in range(3)]
        assert store.degraded
        assert not store.health()[0]
        assert metrics.degraded.labels("quota")._value.get() == 1
        assert metrics.redis_up._value.get() == 0
        assert waits[:2] == [0.0, 0.0]
        assert waits[2] == pytest.approx(2.0, abs=0.05)
        server.start()
        for _ in range(50):
            await asyncio.sleep(0.05)
            if not store.degraded:
                break
        assert not store.degraded
        assert metrics.redis_up._value.get() == 1
        # the restarted Redis learnt what this replica sent while it was away
        fresh = connect(server.url)
        members = await fresh.zrange("hgw:{1}:general", 0, -1)
        await fresh.aclose()
        assert set(members) == {"a", "b0", "b1", "b2"}
    finally:
        await store.aclose()
        server.stop()
