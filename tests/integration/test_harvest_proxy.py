"""The gateway in front of the Harvest simulator: apps notice no difference but the URL."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.settings import Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import (
    ACCOUNT_ID_1,
    ACCOUNT_ID_2,
    ADMIN_TOKEN_1,
    MEMBER_TOKEN_1,
    TIME_ENTRIES_PER_ACCOUNT,
    headers_for,
)


@pytest.fixture
async def harvest(start_simulator, start_gateway):
    origin, sim = await start_simulator(SimConfig())
    url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))
    async with aiohttp.ClientSession(base_url=url) as session:
        yield session, sim, url


async def test_following_links_walks_every_page_through_the_gateway(harvest):
    session, _, url = harvest
    headers = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    seen: list[int] = []
    next_url: str | None = f"{url}/v2/time_entries?per_page=100"
    pages = 0
    while next_url:
        assert next_url.startswith(url), next_url  # never back to the real upstream
        async with session.get(next_url, headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
        seen += [e["id"] for e in body["time_entries"]]
        next_url = body["links"]["next"]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == TIME_ENTRIES_PER_ACCOUNT


async def test_cursor_pages_are_followed_through_the_gateway(harvest):
    session, _, url = harvest
    headers = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    async with session.get("/api/v2/users?per_page=2", headers=headers) as resp:
        first = await resp.json()
    nxt = first["links"]["next"]
    assert nxt.startswith(url)
    assert "cursor=" in nxt
    async with session.get(nxt, headers=headers) as resp:
        assert resp.status == 200
        second = await resp.json()
    assert {u["id"] for u in first["users"]}.isdisjoint({u["id"] for u in second["users"]})


async def test_member_sees_only_own_entries_and_accounts_stay_apart(harvest):
    session, _, _ = harvest
    async with session.get(
        "/v2/time_entries", headers=headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    ) as r:
        admin = (await r.json())["total_entries"]
    member_headers = headers_for(MEMBER_TOKEN_1, ACCOUNT_ID_1)
    async with session.get("/v2/time_entries", headers=member_headers) as r:
        member = await r.json()
    assert 0 < member["total_entries"] < admin
    assert len({e["user"]["id"] for e in member["time_entries"]}) == 1
    async with session.get("/v2/company", headers=headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_2)) as r:
        assert r.status == 401  # a token of account 1 is no key to account 2


async def test_harvest_error_bodies_pass_through_unchanged(harvest):
    session, _, _ = harvest
    member = headers_for(MEMBER_TOKEN_1, ACCOUNT_ID_1)
    async with session.get("/v2/clients", headers=member) as r:
        assert r.status == 403
        assert await r.json() == {"message": "Not authorized!"}
    admin = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    async with session.get("/v2/time_entries/999999999", headers=admin) as r:
        assert r.status == 404
        assert await r.json() == {"status": 404, "error": "Not Found"}
    async with session.post("/v2/time_entries", json={"hours": 1}, headers=admin) as r:
        assert r.status == 422
        assert "message" in await r.json()
    bad = headers_for("not-a-real-token", ACCOUNT_ID_1)
    async with session.get("/v2/users/me", headers=bad) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_token"


async def test_post_creates_and_location_points_at_the_gateway(harvest):
    session, _, url = harvest
    admin = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    async with session.get("/v2/projects", headers=admin) as r:
        project = (await r.json())["projects"][0]
    async with session.get("/v2/tasks", headers=admin) as r:
        task = (await r.json())["tasks"][0]
    entry = {"project_id": project["id"], "task_id": task["id"], "spent_date": "2024-06-03",
             "hours": 1.5, "notes": "via gateway"}  # fmt: skip
    async with session.post("/v2/time_entries", json=entry, headers=admin) as r:
        assert r.status == 201
        location = r.headers["Location"]
        created = await r.json()
    assert location.startswith(url)
    async with session.get(location, headers=admin) as r:
        assert (await r.json())["notes"] == "via gateway"
    async with session.patch(
        f"/v2/time_entries/{created['id']}", json={"notes": "edited"}, headers=admin
    ) as r:
        assert r.status == 200
    async with session.delete(f"/v2/time_entries/{created['id']}", headers=admin) as r:
        assert r.status == 200
    async with session.get(location, headers=admin) as r:
        assert r.status == 404


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [("reset", 502, "upstream_unavailable"), ("truncate", 502, "upstream_unavailable"),
     ("status:503", 503, None)],
)  # fmt: skip
async def test_upstream_faults_become_clear_answers(harvest, fault, status, error):
    session, sim, _ = harvest
    # The gateway tries a GET 3 times (policy upstream_retries = 2) and aiohttp itself once more
    # on a reset keep-alive connection: a fault that outlasts them all.
    sim.faults.add(fault, path_prefix="/v2/users/me", times=10)
    async with session.get("/v2/users/me", headers=headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)) as r:
        assert r.status == status
        if error:
            assert (await r.json())["error"] == error
    sim.faults.clear()  # and once the upstream recovers, so does the gateway
    async with session.get("/v2/users/me", headers=headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)) as r:
        assert r.status == 200


async def test_slow_upstream_times_out_as_504(start_simulator, start_gateway):
    origin, sim = await start_simulator(SimConfig())
    url, _ = await start_gateway(Settings(upstream=origin, read_timeout=0.3))
    sim.faults.add("delay:3", path_prefix="/v2/company")
    headers = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    async with aiohttp.ClientSession(base_url=url) as s, s.get("/v2/company", headers=headers) as r:
        assert r.status == 504
        assert (await r.json())["error"] == "upstream_timeout"


async def test_gzip_from_harvest_is_decoded_for_callers(harvest):
    session, _, _ = harvest
    headers = {**headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1), "Accept-Encoding": "gzip"}
    async with session.get("/v2/time_entries", headers=headers, auto_decompress=False) as r:
        assert r.status == 200
        assert "Content-Encoding" not in r.headers
        body = await r.json()
    assert body["total_entries"] == TIME_ENTRIES_PER_ACCOUNT


async def test_oauth_refresh_and_accounts_via_id_prefix(harvest):
    from gateway.simulator.data import REFRESH_TOKEN_1

    session, _, _ = harvest
    form = {"refresh_token": REFRESH_TOKEN_1, "grant_type": "refresh_token",
            "client_id": "c", "client_secret": "s"}  # fmt: skip
    async with session.post("/id/api/v2/oauth2/token", data=form, headers={"User-Agent": "x"}) as r:
        assert r.status == 200
        token = (await r.json())["access_token"]
    async with session.get(
        "/id/api/v2/accounts", headers={"Authorization": f"Bearer {token}", "User-Agent": "x"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["accounts"][0]["id"]


async def test_links_naming_harvests_own_host_lead_back_to_the_gateway(
    start_simulator, start_gateway
):
    # An upstream at a loopback address (a mirror, a test double) that writes Harvest's real
    # host into links and Location, as the recordings of api.harvestapp.com do.
    origin, _ = await start_simulator(SimConfig(public_base="https://api.harvestapp.com"))
    url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))
    headers = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    async with aiohttp.ClientSession(base_url=url) as session:
        async with session.get("/v2/clients?per_page=1", headers=headers) as resp:
            nxt = (await resp.json())["links"]["next"]
        assert nxt.startswith(url + "/v2/clients?"), nxt
        async with session.get(nxt, headers=headers) as resp:
            assert resp.status == 200
        async with session.post("/v2/clients", json={"name": "Links Ltd"}, headers=headers) as r:
            assert r.status == 201
            location = r.headers["Location"]
        assert location.startswith(url + "/api/v2/clients/"), location
        async with session.get(location, headers=headers) as r:
            assert (await r.json())["name"] == "Links Ltd"
