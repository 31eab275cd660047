from __future__ import annotations

import time

import aiohttp
import pytest

from gateway.simulator import SimConfig, Simulator


async def test_reset_closes_without_response(sim, client, admin1):
    sim.faults.add("reset", "/v2/users")
    with pytest.raises(aiohttp.ClientError):
        await client.get("/v2/users/me", headers=admin1)
    assert sim.log[-1].status == 0
    assert (await client.get("/v2/users/me", headers=admin1)).status == 200


async def test_status_fault_n_times(sim, client, admin1):
    sim.faults.add("status:503", "/v2/", times=2)
    statuses = [(await client.get("/v2/company", headers=admin1)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert not sim.faults.pending


async def test_status_fault_body(sim, client, admin1):
    sim.faults.add("status:502")
    resp = await client.get("/v2/company", headers=admin1)
    assert resp.status == 502
    assert await resp.json() == {"status": 502, "error": "Bad Gateway"}


async def test_prefix_and_alias_matching(sim, client, admin1):
    sim.faults.add("status:500", "/v2/time_entries")
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    assert (await client.get("/api/v2/time_entries", headers=admin1)).status == 500


async def test_method_filter(sim, client, admin1):
    sim.faults.add("status:500", "/v2/", method="POST")
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    assert sim.faults.pending


async def test_delay_fault(sim, client, admin1):
    sim.faults.add("delay:0.2")
    start = time.perf_counter()
    resp = await client.get("/v2/company", headers=admin1)
    assert resp.status == 200
    assert time.perf_counter() - start >= 0.2


async def test_runtime_latency(sim, client, admin1):
    sim.set_latency(0.15)
    start = time.perf_counter()
    await client.get("/v2/company", headers=admin1)
    assert time.perf_counter() - start >= 0.15
    sim.config.latency = 0.0


async def test_truncate_fault(sim, client, admin1):
    sim.faults.add("truncate", "/v2/time_entries")
    resp = await client.get("/v2/time_entries", headers={**admin1, "Accept-Encoding": "identity"})
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_429_fault_ignores_window(sim, client, admin1):
    sim.faults.add("429")
    resp = await client.get("/v2/company", headers=admin1)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "15"
    assert (await client.get("/v2/company", headers=admin1)).status == 200
    assert sim.max_in_window(15) == 1


async def test_429_fault_honours_never(clock, aiohttp_client, admin1):
    sim = Simulator(SimConfig(retry_after="never"), clock=clock)
    client = await aiohttp_client(sim.app())
    sim.faults.add("429")
    resp = await client.get("/v2/company", headers=admin1)
    assert resp.status == 429
    assert "Retry-After" not in resp.headers


def test_bad_fault_kind(sim):
    for kind in ("explode", "status:abc", "delay:-1", "status:99"):
        with pytest.raises(ValueError, match="fault"):
            sim.faults.add(kind)
