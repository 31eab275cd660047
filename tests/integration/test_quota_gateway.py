"""The quota end to end: a gateway on a real socket in front of the Harvest simulator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.settings import Settings
from gateway.simulator import ACCOUNT_ID_1, ACCOUNT_ID_2, ADMIN_TOKEN_1, ADMIN_TOKEN_2, SimConfig
from gateway.web import keys
from tests.conftest import GatewayFactory
from tests.integration.quota_support import burst, caller_headers, fetch, policy_file, simulator

N, W = 10, 0.5


async def test_a_burst_drains_at_the_limit_with_no_429(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with simulator(SimConfig(general_limit=N, general_window=W)) as (sim, sim_url):
        policy = policy_file(tmp_path, limit=N, window=W)
        url, app = await start_gateway(Settings(upstream=sim_url, policy=policy))
        h1 = caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1)
        h2 = caller_headers(ADMIN_TOKEN_2, ACCOUNT_ID_2)
        jobs = [(f"{url}/v2/time_entries?page={i}", h1) for i in range(40)]
        jobs += [(f"{url}/v2/users/me", h2) for _ in range(10)]
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            results = await burst(session, jobs)
        elapsed = time.monotonic() - started
        assert [s for s, _ in results] == [200] * 50
        assert sim.count(status=429) == 0
        assert sim.max_in_window(W, account_id=ACCOUNT_ID_1) <= N
        # 40 requests at 10 per 0.5 s: slots at 0, W', 2W', 3W' (W' = W + margin)
        ideal = 3 * W
        assert ideal <= elapsed < 3 * (W + 0.05) * 1.05 + 0.3
        waits = [float(h["X-Gateway-Queue-Wait"]) for _, h in results]
        assert min(waits) < 100  # the first slots are free: only the queue's own overhead
        assert max(waits) >= 1000 * ideal
        metrics = app[keys.METRICS].render().decode()
        assert "harvestgw_quota_wait_seconds_bucket" in metrics
        assert 'harvestgw_quota_reservations_total{outcome="granted"} 50.0' in metrics
        assert "harvestgw_upstream_429_total 0.0" in metrics


@pytest.mark.parametrize("retry_after", ["always", "never"])
async def test_an_outside_client_burning_the_quota_is_absorbed(
    start_gateway: GatewayFactory, tmp_path: Path, retry_after: str
) -> None:
    """Another client spends the account's quota at Harvest directly: the gateway gets 429s
    (with and without Retry-After), blocks the account, retries, and its callers see none."""
    config = SimConfig(general_limit=N, general_window=W, retry_after=retry_after)
    async with simulator(config) as (sim, sim_url):
        policy = policy_file(tmp_path, limit=N, window=W, penalty=W)
        url, app = await start_gateway(Settings(upstream=sim_url, policy=policy))
        h1 = caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1)
        async with aiohttp.ClientSession() as session:
            outside = await burst(session, [(f"{sim_url}/v2/users/me", h1)] * 8)
            assert [s for s, _ in outside] == [200] * 8
            posts = [fetch(session, f"{url}/v2/clients", h1, method="POST") for _ in range(3)]
            gets = burst(session, [(f"{url}/v2/time_entries?page={i}", h1) for i in range(15)])
            post_results, get_results = await asyncio.gather(asyncio.gather(*posts), gets)
        statuses = [s for s, _ in post_results] + [s for s, _ in get_results]
        assert 429 not in statuses
        assert statuses.count(201) == 3
        assert statuses.count(200) == 15
        assert sim.count(status=429) >= 1  # the outside client really did cause 429s
        metrics = app[keys.METRICS]
        assert metrics.upstream_429._value.get() == sim.count(status=429)
        assert metrics.reservations.labels("retried")._value.get() >= 1
        # each POST reached Harvest's books once (a 429 means not processed)
        created = [r for r in sim.log if r.method == "POST" and r.status == 201]
        assert len(created) == 3


async def test_a_wait_over_the_maximum_is_503_with_retry_after(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    async with simulator(SimConfig(general_limit=2, general_window=10.0)) as (sim, sim_url):
        policy = policy_file(tmp_path, limit=2, window=10.0, max_wait=1.0)
        url, _ = await start_gateway(Settings(upstream=sim_url, policy=policy))
        h1 = caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1)
        async with aiohttp.ClientSession() as session:
            results = await burst(session, [(f"{url}/v2/users/me", h1)] * 3)
            statuses = sorted(s for s, _ in results)
            assert statuses == [200, 200, 503]
            refused = next(h for s, h in results if s == 503)
            assert float(refused["X-Gateway-Queue-Wait"]) < 100  # refused at once
            assert refused["Retry-After"] == "11"  # the next slot: 10 s + the 50 ms margin
            async with session.get(f"{url}/v2/users/me", headers=h1) as resp:
                body = await resp.json()
                assert resp.status == 503
                assert body["error"] == "quota_wait_exceeded"
                assert body["retry_after"] >= 9
            async with session.get(f"{url}/_gateway/quota") as resp:
                status = await resp.json()
        assert sim.count(status=429) == 0
        account = status["accounts"][ACCOUNT_ID_1]
        assert account["quotas"]["general"]["used"] == 2
        assert account["quotas"]["general"]["utilisation"] == 1.0
        assert account["blocked_for"] == 0
        assert status["store"] == {"ok": True, "detail": "in-process"}


async def test_a_429_block_longer_than_the_maximum_wait_is_a_prompt_503(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    # Harvest blocks the account for 30 s; the caller agreed to wait 1 s at most. It gets a 503
    # saying when to come back as soon as that is known, not a 31 s wait.
    async with simulator(SimConfig(general_limit=100, general_window=30.0)) as (sim, sim_url):
        sim.faults.add("429", path_prefix="/v2/users/me")
        policy = policy_file(tmp_path, limit=100, window=30.0, max_wait=60.0)
        url, _ = await start_gateway(Settings(upstream=sim_url, policy=policy))
        h1 = {**caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1), "X-Gateway-Max-Wait": "1"}
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            status, headers = await fetch(session, f"{url}/v2/users/me", h1)
        elapsed = time.monotonic() - started
    assert status == 503
    assert elapsed < 5
    assert int(headers["Retry-After"]) >= 25  # the block's end
    assert sim.count(status=429) == 1
    assert len(sim.log) == 1  # not sent again: the block outlasts the caller's wait


async def test_a_reports_429_leaves_other_requests_alone(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    # Harvest throttles the account's reports (the simulator's 429 says: back in 30 s). Its
    # other endpoints keep their own limit: the gateway keeps serving them meanwhile.
    async with simulator(SimConfig(general_limit=100, general_window=30.0)) as (sim, sim_url):
        sim.faults.add("429", path_prefix="/v2/reports/")
        policy = policy_file(tmp_path, limit=100, window=30.0)
        url, _ = await start_gateway(Settings(upstream=sim_url, policy=policy))
        h1 = {**caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1), "X-Gateway-Max-Wait": "1"}
        report = f"{url}/v2/reports/time/clients?from=20240101&to=20240131"
        async with aiohttp.ClientSession() as session:
            status, headers = await fetch(session, report, h1)
            assert status == 503
            assert int(headers["Retry-After"]) >= 25
            started = time.monotonic()
            for path in ("/v2/users/me", "/v2/clients", "/v2/time_entries"):
                status, headers = await fetch(session, url + path, h1)
                assert status == 200, path
                assert float(headers["X-Gateway-Queue-Wait"]) < 100
            assert time.monotonic() - started < 2
            status, _ = await fetch(session, report, h1)
            assert status == 503  # the reports block still holds
    assert sim.count(status=429) == 1


async def test_id_routes_bypass_the_quota(start_gateway: GatewayFactory, tmp_path: Path) -> None:
    async with simulator(SimConfig(general_limit=1, general_window=10.0)) as (sim, sim_url):
        policy = policy_file(tmp_path, limit=1, window=10.0, max_wait=0.0)
        url, _ = await start_gateway(Settings(upstream=sim_url, id_upstream=sim_url, policy=policy))
        h1 = caller_headers(ADMIN_TOKEN_1, ACCOUNT_ID_1)
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                status, headers = await fetch(session, f"{url}/id/api/v2/accounts", h1)
                assert status == 200
                assert headers["X-Gateway-Queue-Wait"] == "0"
            # No queue to wait in there, but a 429 still never reaches the caller.
            sim.faults.add("429", path_prefix="/api/v2/accounts")
            status, headers = await fetch(session, f"{url}/id/api/v2/accounts", h1)
            assert status == 503
            assert int(headers["Retry-After"]) >= 10  # the simulator's window
