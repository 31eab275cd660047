"""Upstream faults against the simulator: a safe request is tried again, a write never is.

Each retry goes back through admission, so it takes a quota slot of its own; only the answer the
caller gets is cached or recorded.
"""

from __future__ import annotations

import aiohttp
import pytest
import yaml

from gateway.settings import Mode, RecordMode, Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1, headers_for

H = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)


@pytest.fixture
async def rig(start_simulator, start_gateway):
    async def start(**settings):
        origin, sim = await start_simulator(SimConfig())
        url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin, **settings))
        return url, sim

    return start


def sent(sim, method: str, path: str) -> int:
    return sum(1 for r in sim.log if r.method == method and r.path == path)


async def test_a_get_succeeds_after_two_503s(rig):
    url, sim = await rig()
    sim.faults.add("status:503", path_prefix="/v2/users/me", times=2)
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/users/me", headers=H) as r:
        assert r.status == 200
        assert (await r.json())["id"]
        assert r.headers["X-Gateway-Upstream-Attempts"] == "3"
    assert sent(sim, "GET", "/v2/users/me") == 3


@pytest.mark.parametrize("fault", ["status:503", "status:502", "reset"])
async def test_a_post_is_sent_once_whatever_happens(rig, fault):
    url, sim = await rig()
    sim.faults.add(fault, path_prefix="/v2/clients", times=3)
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v2/clients", json={"name": "Once"}, headers=H) as r:
            assert r.status in (502, 503)
            assert "X-Gateway-Upstream-Attempts" not in r.headers
        assert sent(sim, "POST", "/v2/clients") == 1
        sim.faults.clear()
        async with s.get(url + "/v2/clients", headers=H) as r:  # nothing was created twice
            names = [c["name"] for c in (await r.json())["clients"]]
    assert "Once" not in names  # the simulator answered the fault, not the write


async def test_a_500_a_timeout_and_a_longer_retry_after_are_not_retried(rig):
    url, sim = await rig(read_timeout=0.3)
    sim.faults.add("status:500", path_prefix="/v2/users/me")
    sim.faults.add("delay:2", path_prefix="/v2/company")
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v2/users/me", headers=H) as r:
            assert r.status == 500
        async with s.get(url + "/v2/company", headers=H) as r:
            assert r.status == 504
    assert sent(sim, "GET", "/v2/users/me") == 1
    assert sent(sim, "GET", "/v2/company") == 1


@pytest.mark.parametrize("fault", ["reset", "truncate", "status:504"])
async def test_resets_and_cut_bodies_on_a_get_are_retried(rig, fault):
    url, sim = await rig()
    sim.faults.add(fault, path_prefix="/v2/tasks", times=1)
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/tasks", headers=H) as r:
        assert r.status == 200
        body = await r.json()
    assert body["tasks"]
    assert sent(sim, "GET", "/v2/tasks") >= 2


async def test_a_burst_longer_than_the_retries_passes_harvests_answer_on(rig):
    url, sim = await rig()
    sim.faults.add("status:503", path_prefix="/v2/users/me", times=5)
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/users/me", headers=H) as r:
        assert r.status == 503
        assert r.headers["X-Gateway-Upstream-Attempts"] == "3"
    assert sent(sim, "GET", "/v2/users/me") == 3


async def test_every_retry_takes_its_own_quota_slot(rig):
    url, sim = await rig(quota=("general=2/1s",))
    sim.faults.add("status:503", path_prefix="/v2/users/me", times=2)
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v2/users/me", headers=H) as r:
            assert r.status == 200
        async with s.get(url + "/metrics") as r:
            metrics = await r.text()
    times = [e.t for e in sim.log if e.path == "/v2/users/me"]
    assert len(times) == 3
    assert times[2] - times[0] >= 1.0  # the third try waited for the next window's slot
    assert 'harvestgw_quota_reservations_total{outcome="granted"} 3.0' in metrics
    assert 'harvestgw_upstream_retries_total{reason="503"} 2.0' in metrics
    assert sim.count(status=429) == 0


async def test_only_the_final_answer_is_cached(rig):
    url, sim = await rig()
    sim.faults.add("status:503", path_prefix="/v2/company", times=1)
    async with aiohttp.ClientSession() as s:
        for expect in ("MISS", "HIT"):
            async with s.get(url + "/v2/company", headers=H) as r:
                assert r.status == 200
                assert r.headers["X-Cache"] == expect
    assert sent(sim, "GET", "/v2/company") == 2


async def test_a_cassette_holds_what_the_caller_saw_not_the_failed_tries(rig, tmp_path):
    url, sim = await rig(
        mode=Mode.RECORD, record_mode=RecordMode.ALL, cassette_dir=str(tmp_path), cassette="c"
    )
    sim.faults.add("status:503", path_prefix="/v2/users/me", times=2)
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/users/me", headers=H) as r:
        assert r.status == 200
        assert r.headers["X-Gateway-Record"] == "recorded"
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert [i["response"]["status"]["code"] for i in doc["interactions"]] == [200]
