"""Two replicas sharing one real Redis: one upstream request per key, writes seen everywhere."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway.settings import Settings
from gateway.simulator.data import ACCOUNT_ID_1 as A1
from gateway.simulator.data import ADMIN_TOKEN_1, MEMBER_TOKEN_1, headers_for
from gateway.stores.cache import MemoryTier
from gateway.stores.cache_redis import RedisOptions, RedisStore
from gateway.stores.envelope import Entry
from gateway.web.cache_admin import CACHE
from tests.integration.cache.conftest import get
from tests.support import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def shared_redis(redis_url):
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    yield redis_url
    await client.aclose()


async def replicas(
    start_gateway: Any,
    upstream: Any,
    redis_url: str,
    n: int = 2,
    stores: list[RedisStore] | None = None,
) -> list[str]:
    # Replicas behind one load balancer: one public URL, so their bodies' links agree and they
    # may share cached entries (replicas reached by different hosts keep theirs apart).
    settings = Settings(
        upstream=upstream.url,
        redis_url=redis_url,
        admin_token="adm",
        public_url="http://harvest-gateway.internal",
    )
    out: list[str] = []
    stores = [] if stores is None else stores
    for _ in range(n):
        base, app = await start_gateway(settings)
        out.append(base)
        store = app[CACHE].store
        assert isinstance(store, RedisStore)
        stores.append(store)
    for _ in range(200):  # every replica's invalidation subscription is up before we start
        if all(s.bus_up() for s in stores):
            break
        await asyncio.sleep(0.01)
    return out


async def test_fifty_cold_gets_across_two_replicas_make_one_upstream_request(
    start_gateway, upstream, http, shared_redis
):
    upstream.sim.config.latency = 0.3
    a, b = await replicas(start_gateway, upstream, shared_redis)
    results = await asyncio.gather(
        *(get(http, (a, b)[i % 2], "/v2/company", ADMIN_TOKEN_1, A1) for i in range(50))
    )
    assert upstream.gets("/v2/company") == 1
    outcomes = [h["X-Cache"] for _, h, _ in results]
    assert outcomes.count("MISS") == 1
    assert outcomes.count("COALESCED") == 49
    assert len({body for _, _, body in results}) == 1


async def test_patch_then_get_through_either_replica_sees_new_data(
    start_gateway, upstream, http, shared_redis
):
    a, b = await replicas(start_gateway, upstream, shared_redis)
    _, _, page = await get(http, a, "/v2/time_entries", ADMIN_TOKEN_1, A1)
    item = f"/v2/time_entries/{json.loads(page)['time_entries'][0]['id']}"
    for round_ in range(10):
        for base in (a, b):  # warm both replicas' memory tiers and Redis
            await get(http, base, item, ADMIN_TOKEN_1, A1)
            _, h, _ = await get(http, base, item, ADMIN_TOKEN_1, A1)
            assert h["X-Cache"] == "HIT"
        writer, reader = (a, b) if round_ % 2 == 0 else (b, a)
        notes = f"round {round_}"
        async with http.patch(
            writer + item, json={"notes": notes}, headers=headers_for(ADMIN_TOKEN_1, A1)
        ) as r:
            assert r.status == 200
        for base in (reader, writer):
            _, h, body = await get(http, base, item, ADMIN_TOKEN_1, A1)
            assert json.loads(body)["notes"] == notes, (round_, base)


async def test_a_hit_on_one_replica_is_a_hit_on_the_other_but_not_for_another_token(
    start_gateway, upstream, http, shared_redis
):
    a, b = await replicas(start_gateway, upstream, shared_redis)
    await get(http, a, "/v2/users/me", ADMIN_TOKEN_1, A1)
    _, h, _ = await get(http, b, "/v2/users/me", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"
    _, h, _ = await get(http, b, "/v2/users/me", MEMBER_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"


async def test_admin_purge_reaches_every_replica(start_gateway, upstream, http, shared_redis):
    a, b = await replicas(start_gateway, upstream, shared_redis)
    for base in (a, b, a, b):
        await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    auth = {"Authorization": "Bearer adm"}
    async with http.delete(a + "/_gateway/cache", headers=auth) as r:
        assert (await r.json())["purged"] >= 1
    await asyncio.sleep(0.05)
    _, h, _ = await get(http, b, "/v2/clients", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"
    async with http.get(b + "/_gateway/cache") as r:
        stats = await r.json()
    assert stats["tiers"]["redis"]["entries"] == 1
    assert stats["tiers"]["redis"]["bytes"] > 0


async def test_redis_going_away_degrades_to_misses_not_errors(
    start_gateway, upstream, http, redis_service
):
    # a Redis nobody listens on: every cache call fails fast and the request still succeeds
    settings = Settings(upstream=upstream.url, redis_url="redis://127.0.0.1:1/0")
    base, _ = await start_gateway(settings)
    for _ in range(2):
        status, h, _ = await get(http, base, "/v2/users/me", ADMIN_TOKEN_1, A1)
        assert status == 200
        assert h["X-Cache"] == "MISS"
    async with http.get(base + "/readyz") as r:
        assert r.status == 503


async def test_a_write_waits_for_every_replica_to_drop_its_copy_but_not_forever(shared_redis):
    """Invalidation is confirmed by every subscriber; one that never confirms (a stray client on
    the channel) costs the write ``ack_timeout``, nothing more."""

    def store() -> RedisStore:
        options = RedisOptions(url=shared_redis, ack_timeout=0.3)
        return RedisStore(options, MemoryTier(max_entries=100, max_bytes=1 << 20))

    a, b = store(), store()
    for s in (a, b):
        await s.start()
    stray = aioredis.from_url(shared_redis).pubsub()
    try:
        for _ in range(200):
            if a.bus_up() and b.bus_up():
                break
            await asyncio.sleep(0.01)
        key = f"{A1}|p|GET|/v2/users/me|-"
        now = 1_700_000_000.0
        entry = Entry(status=200, reason="OK", headers=(), body=b"{}", stored_at=now, ttl=60.0,
                      stale=0.0, etag=None)  # fmt: skip
        assert await a.put(key, entry, gen=await a.generation(A1))
        assert await b.get(key, now) is not None  # now in b's memory tier too
        assert b.get_near(key, now) is not None  # so it may answer without Redis
        loop = asyncio.get_running_loop()
        started = loop.time()
        await a.invalidate(A1, None)
        assert loop.time() - started < 0.25  # both replicas confirmed: no timeout waited
        assert await b.near.get(key, now) is None  # b dropped its copy before the write returned
        await stray.subscribe(b.options.namespace + ":events")  # never confirms anything
        started = loop.time()
        await a.invalidate(A1, None)
        assert 0.25 <= loop.time() - started < 1.0
        # A replica whose own subscription is down cannot hear confirmations: it does not wait.
        c = store()  # never started: no subscription
        assert await c.near.put(key, entry, gen=0)
        assert c.get_near(key, now) is None  # its memory may be stale: it never answers
        started = loop.time()
        await c.invalidate(A1, None)
        assert loop.time() - started < 0.25
        await c.aclose()
    finally:
        await stray.aclose()
        for s in (a, b):
            await s.aclose()


async def test_after_redis_restarts_a_write_on_one_replica_reaches_the_other(
    start_gateway, upstream, http
):
    server = RedisServer()
    server.start()
    try:
        stores: list[RedisStore] = []
        a, b = await replicas(start_gateway, upstream, server.url, stores=stores)
        _, _, page = await get(http, a, "/v2/time_entries", ADMIN_TOKEN_1, A1)
        item = f"/v2/time_entries/{json.loads(page)['time_entries'][0]['id']}"
        for base in (a, b):
            await get(http, base, item, ADMIN_TOKEN_1, A1)
        server.stop()
        for base in (a, b):  # Redis away: still answered (the memory tier, or upstream)
            status, _, _ = await get(http, base, item, ADMIN_TOKEN_1, A1)
            assert status == 200
        server.start()
        for _ in range(500):  # each replica's invalidation subscription comes back by itself
            if all(s.bus_up() for s in stores):
                break
            await asyncio.sleep(0.01)
        assert all(s.bus_up() for s in stores)
        async with http.patch(
            a + item, json={"notes": "after the restart"}, headers=headers_for(ADMIN_TOKEN_1, A1)
        ) as r:
            assert r.status == 200
        for base in (b, a):
            _, _, body = await get(http, base, item, ADMIN_TOKEN_1, A1)
            assert json.loads(body)["notes"] == "after the restart", base
    finally:
        server.stop()
