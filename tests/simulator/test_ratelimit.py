from __future__ import annotations

import asyncio

import pytest

from gateway.simulator import ADMIN_TOKEN_1, ADMIN_TOKEN_2, SimConfig, Simulator, headers_for
from gateway.simulator.ratelimit import RateLimiter, max_in_window, retry_after_seconds

REPORT = "/v2/reports/time/clients?from=20240101&to=20240531"


@pytest.fixture
def small(clock):
    return Simulator(SimConfig(general_limit=5, general_window=0.5), clock=clock)


async def test_429_exactly_at_limit_plus_one(small, clock, aiohttp_client, admin1):
    client = await aiohttp_client(small.app())
    statuses = []
    for _ in range(6):
        statuses.append((await client.get("/v2/users/me", headers=admin1)).status)
        clock.advance(0.01)
    assert statuses == [200] * 5 + [429]
    resp = await client.get("/v2/users/me", headers=admin1)
    assert resp.status == 429
    assert await resp.read() == b""
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache, no-store"
    assert resp.headers["Retry-After"] == "1"  # 0.44 s left, rounded up
    assert small.count(status=429) == 2
    assert small.max_in_window(0.5) == 5
    # the oldest stamp leaves at t0 + 0.5; 429s did not extend the window
    clock.advance(0.5 - 0.06 + 1e-6)
    assert (await client.get("/v2/users/me", headers=admin1)).status == 200
    assert (await client.get("/v2/users/me", headers=admin1)).status == 429
    assert small.max_in_window(0.5) == 5
    assert small.max_in_window(10) == 6


async def test_real_time_scaled_window(aiohttp_client, admin1):
    sim = Simulator(SimConfig(general_limit=5, general_window=0.5))
    client = await aiohttp_client(sim.app())
    statuses = [(await client.get("/v2/company", headers=admin1)).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    await asyncio.sleep(0.55)
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    assert sim.max_in_window(0.5) == 5


async def test_retry_after_seconds_ceil(clock, aiohttp_client, admin1):
    sim = Simulator(SimConfig(general_limit=2, general_window=15), clock=clock)
    client = await aiohttp_client(sim.app())
    await client.get("/v2/company", headers=admin1)
    clock.advance(3.2)
    await client.get("/v2/company", headers=admin1)
    resp = await client.get("/v2/company", headers=admin1)
    assert resp.headers["Retry-After"] == "12"  # 15 - 3.2 = 11.8 -> 12


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("never", [False, False, False]), ("alternate", [True, False, True])],
)
async def test_retry_after_modes(mode, expected, clock, aiohttp_client, admin1):
    sim = Simulator(SimConfig(general_limit=1, retry_after=mode), clock=clock)
    client = await aiohttp_client(sim.app())
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    seen = []
    for _ in expected:
        resp = await client.get("/v2/company", headers=admin1)
        assert resp.status == 429
        seen.append("Retry-After" in resp.headers)
    assert seen == expected


async def test_limits_are_per_account(clock, aiohttp_client, admin1):
    sim = Simulator(SimConfig(general_limit=2), clock=clock)
    client = await aiohttp_client(sim.app())
    other = headers_for(ADMIN_TOKEN_2, "222222")
    assert [(await client.get("/v2/company", headers=admin1)).status for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert (await client.get("/v2/company", headers=other)).status == 200
    assert sim.max_in_window(15, account_id="111111") == 2
    assert sim.max_in_window(15, account_id="222222") == 1
    assert sim.max_in_window(15) == 3


async def test_reports_limit_counted_separately(clock, aiohttp_client, admin1):
    sim = Simulator(SimConfig(general_limit=10, reports_limit=2, reports_window=60), clock=clock)
    client = await aiohttp_client(sim.app())
    assert [(await client.get(REPORT, headers=admin1)).status for _ in range(3)] == [200, 200, 429]
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    assert sim.max_in_window(60, reports_only=True) == 2
    # reports also count against the general limit: 2 reports + 1 + 7 more = 10
    statuses = [(await client.get("/v2/company", headers=admin1)).status for _ in range(8)]
    assert statuses == [200] * 7 + [429]
    clock.advance(15)
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    resp = await client.get(REPORT, headers=admin1)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "45"


async def test_unauthenticated_requests_with_account_id_count(clock, aiohttp_client):
    sim = Simulator(SimConfig(general_limit=2), clock=clock)
    client = await aiohttp_client(sim.app())
    bad = headers_for("wrong-token", "111111")
    assert (await client.get("/v2/company", headers=bad)).status == 401
    assert (await client.get("/v2/company", headers=bad)).status == 401
    assert (
        await client.get("/v2/company", headers=headers_for(ADMIN_TOKEN_1, "111111"))
    ).status == 429
    no_account = {"User-Agent": "x (y@z)", "Authorization": f"Bearer {ADMIN_TOKEN_1}"}
    assert (await client.get("/v2/company", headers=no_account)).status == 401


def test_limiter_unit(clock):
    cfg = SimConfig(general_limit=3, general_window=1.0)
    lim = RateLimiter(cfg)
    assert [lim.admit("a", t, is_report=False) for t in (0.0, 0.1, 0.2)] == [None] * 3
    assert lim.admit("a", 0.3, is_report=False) == pytest.approx(0.7)
    assert lim.admit("a", 1.0, is_report=False) is None  # stamp 0.0 left at exactly 1.0
    assert lim.admit("a", 1.05, is_report=False) == pytest.approx(0.05)


def test_max_in_window_unit():
    assert max_in_window([], 1) == 0
    assert max_in_window([0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(2.0) == 2
