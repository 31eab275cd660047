"""The response cache against the Harvest simulator: hits, keys, single flight, writes, stale."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from gateway.clock import FakeClock
from gateway.settings import Settings
from gateway.simulator.data import (
    ACCOUNT_ID_1 as A1,
)
from gateway.simulator.data import (
    ADMIN_TOKEN_1,
    MEMBER_TOKEN_1,
    headers_for,
)
from tests.integration.cache.conftest import get

ME = "/v2/users/me"


async def test_miss_then_hit_with_age_and_no_second_upstream_call(start_gateway, upstream, http):
    clock = FakeClock()
    base, _ = await start_gateway(Settings(upstream=upstream.url), clock=clock)
    status, h, body = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert (status, h["X-Cache"], h["Age"]) == (200, "MISS", "0")
    clock.advance(42)
    status, h2, body2 = await get(http, base, "/api/v2/users/me.json", ADMIN_TOKEN_1, A1)
    assert (status, h2["X-Cache"], h2["Age"], body2) == (200, "HIT", "42", body)
    assert h2["Content-Type"].startswith("application/json")
    assert upstream.gets("/v2/users/me") + upstream.gets("/api/v2/users/me") == 1
    clock.advance(300)  # past the 5 minute ttl: fetched again
    _, h3, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert h3["X-Cache"] == "MISS"


async def test_two_tokens_of_one_account_never_share(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    _, _, admin = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    _, h, member = await get(http, base, ME, MEMBER_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"
    assert json.loads(admin)["id"] != json.loads(member)["id"]
    # the query-string credential is the same identity as the header one
    q = f"{ME}?access_token={MEMBER_TOKEN_1}&account_id={A1}"
    async with http.get(base + q, headers={"User-Agent": "t (t@example.com)"}) as r:
        assert r.headers["X-Cache"] == "HIT"
        assert await r.read() == member


async def test_no_cache_bypasses_and_refreshes_no_store_stores_nothing(
    start_gateway, upstream, http
):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    no_cache = {"Cache-Control": "no-cache"}
    _, h, _ = await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1, **no_cache)
    assert h["X-Cache"] == "BYPASS"
    assert upstream.gets("/v2/clients") == 2
    _, h, _ = await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1, **{"Cache-Control": "no-store"})
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"


async def test_errors_are_not_stored(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    for _ in range(2):
        status, h, _ = await get(http, base, "/v2/clients/999999999", ADMIN_TOKEN_1, A1)
        assert (status, h["X-Cache"]) == (404, "MISS")
    assert upstream.gets("/v2/clients/999999999") == 2


async def test_a_cut_short_reply_is_not_stored(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    # outlasts the gateway's retries of a GET (policy upstream_retries = 2)
    upstream.sim.faults.add("truncate", path_prefix="/v2/projects", times=10)
    status, _, _ = await get(http, base, "/v2/projects", ADMIN_TOKEN_1, A1)
    assert status == 502
    upstream.sim.faults.clear()
    status, h, body = await get(http, base, "/v2/projects", ADMIN_TOKEN_1, A1)
    assert (status, h["X-Cache"]) == (200, "MISS")
    json.loads(body)


async def test_fifty_concurrent_cold_gets_make_one_upstream_request(start_gateway, upstream, http):
    upstream.sim.config.latency = 0.2
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    results = await asyncio.gather(
        *(get(http, base, "/v2/company", ADMIN_TOKEN_1, A1) for _ in range(50))
    )
    assert upstream.gets("/v2/company") == 1
    outcomes = sorted(h["X-Cache"] for _, h, _ in results)
    assert outcomes.count("MISS") == 1
    assert outcomes.count("COALESCED") == 49
    assert len({body for _, _, body in results}) == 1


async def test_patch_then_get_sees_the_new_data(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    _, _, page = await get(http, base, "/v2/time_entries", ADMIN_TOKEN_1, A1)
    entry = json.loads(page)["time_entries"][0]
    item = f"/v2/time_entries/{entry['id']}"
    await get(http, base, item, ADMIN_TOKEN_1, A1)
    report = "/v2/reports/time/projects?from=20000101&to=20991231"
    await get(http, base, report, ADMIN_TOKEN_1, A1)
    _, h, _ = await get(http, base, item, MEMBER_TOKEN_1, A1)  # another principal's entry
    async with http.patch(
        base + item, json={"notes": "changed by test"}, headers=headers_for(ADMIN_TOKEN_1, A1)
    ) as r:
        assert r.status == 200
        assert r.headers["X-Cache"] == "BYPASS"  # a write: no cache stage looked
    for path in (item, "/v2/time_entries", report):
        _, h, body = await get(http, base, path, ADMIN_TOKEN_1, A1)
        assert h["X-Cache"] == "MISS", path
    _, _, body = await get(http, base, item, ADMIN_TOKEN_1, A1)
    assert json.loads(body)["notes"] == "changed by test"
    _, h, _ = await get(http, base, item, MEMBER_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS", "the member's copy of the item went too"


async def test_a_payment_under_an_invoice_drops_the_invoice_its_list_and_its_payments(
    start_gateway, upstream, http
):
    """A write to a sub-resource (``invoices/{id}/payments``) changes its parent: the invoice's
    due amount and state, and so the invoice list."""
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    _, _, page = await get(http, base, "/v2/invoices", ADMIN_TOKEN_1, A1)
    unpaid = next(i for i in json.loads(page)["invoices"] if i["state"] == "open")
    item, payments = f"/v2/invoices/{unpaid['id']}", f"/v2/invoices/{unpaid['id']}/payments"
    for path in ("/v2/invoices", item, payments):
        await get(http, base, path, ADMIN_TOKEN_1, A1)
        _, h, _ = await get(http, base, path, ADMIN_TOKEN_1, A1)
        assert h["X-Cache"] == "HIT", path
    async with http.post(base + payments, json={"amount": unpaid["due_amount"]},
                         headers=headers_for(ADMIN_TOKEN_1, A1)) as r:  # fmt: skip
        assert r.status == 201
        assert r.headers["Location"].startswith(base + "/api/v2/invoices/")  # on the gateway
    seen = {}
    for path in ("/v2/invoices", item, payments):
        _, h, body = await get(http, base, path, ADMIN_TOKEN_1, A1)
        assert h["X-Cache"] == "MISS", path
        seen[path] = json.loads(body)
    assert (seen[item]["state"], seen[item]["due_amount"]) == ("paid", 0.0)
    listed = {i["id"]: i["state"] for i in seen["/v2/invoices"]["invoices"]}
    assert listed[unpaid["id"]] == "paid"
    assert [p["amount"] for p in seen[payments]["invoice_payments"]] == [unpaid["due_amount"]]


async def test_stale_served_when_upstream_fails_then_refreshed(start_gateway, upstream, http):
    clock = FakeClock()
    base, _ = await start_gateway(Settings(upstream=upstream.url), clock=clock)
    _, _, first = await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    clock.advance(31)  # past the 30 s ttl, within the 10 min stale allowance
    # a 500 is not retried (a 503 would be, after a backoff this frozen clock never reaches)
    upstream.sim.faults.add("status:500", path_prefix="/v2/clients", times=1)
    status, h, body = await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    assert (status, h["X-Cache"], h["Age"], body) == (200, "STALE", "31", first)
    for _ in range(100):  # the background refresh lands
        _, h, _ = await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
        if h["X-Cache"] == "HIT":
            break
        await asyncio.sleep(0.01)
    assert h["X-Cache"] == "HIT"
    assert h["Age"] == "0"


async def test_revalidation_with_etag_counts_304s(start_gateway, upstream, http):
    clock = FakeClock()
    base, _ = await start_gateway(Settings(upstream=upstream.url), clock=clock)
    _, h0, first = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1)
    assert h0.get("ETag")
    clock.advance(31)
    status, h, body = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1)
    assert (status, h["X-Cache"], body) == (200, "MISS", first)
    # (the simulator logs the status before its 304 conversion: the metric below proves the 304)
    assert upstream.sim.log[-1].headers.get("If-None-Match") == h0["ETag"]
    async with http.get(base + "/metrics") as r:
        assert 'harvestgw_cache_requests_total{outcome="revalidated"} 1.0' in await r.text()
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"


async def test_admin_purge_needs_the_token_and_purges(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url, admin_token="s3cret"))
    await get(http, base, ME, ADMIN_TOKEN_1, A1)
    await get(http, base, "/v2/clients", ADMIN_TOKEN_1, A1)
    async with http.delete(base + "/_gateway/cache") as r:
        assert r.status == 401
    auth = {"Authorization": "Bearer s3cret"}
    async with http.delete(base + "/_gateway/cache?prefix=/api/v2/clients", headers=auth) as r:
        assert (r.status, (await r.json())["purged"]) == (200, 1)
    _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"
    async with http.post(base + "/_gateway/cache", json={"account": A1}, headers=auth) as r:
        assert (await r.json())["purged"] == 1
    _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"
    async with http.get(base + "/_gateway/cache") as r:
        stats = await r.json()
    assert stats["tiers"]["memory"]["entries"] == 1
    assert stats["outcomes"]["HIT"] == 1


async def test_requests_without_a_credential_are_never_cached(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    ua = {"User-Agent": "x (x@y.z)"}
    async with aiohttp.ClientSession() as s, s.get(base + ME, headers=ua) as r:
        assert r.status == 401
        assert r.headers["X-Cache"] == "BYPASS"  # refused before the pipeline


async def test_a_callers_if_none_match_is_answered_from_its_own_fresh_copy(
    start_gateway, upstream, http
):
    clock = FakeClock()
    base, _ = await start_gateway(Settings(upstream=upstream.url), clock=clock)
    _, h0, first = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1)
    etag = h0["ETag"]
    reads = upstream.gets("/v2/tasks")
    status, h, body = await get(
        http, base, "/v2/tasks", ADMIN_TOKEN_1, A1, **{"If-None-Match": etag}
    )
    assert (status, h["X-Cache"], h["ETag"], body) == (304, "HIT", etag, b"")
    assert "Content-Type" not in h  # a 304 carries validators, not the body's metadata
    # Weak comparison, in a list; a tag that is not listed gets the copy itself.
    listed = f'"other", {etag.removeprefix("W/")}'
    status, h, _ = await get(
        http, base, "/v2/tasks", ADMIN_TOKEN_1, A1, **{"If-None-Match": listed}
    )
    assert (status, h["X-Cache"]) == (304, "HIT")
    status, h, body = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1,
                                **{"If-None-Match": 'W/"other"'})  # fmt: skip
    assert (status, h["X-Cache"], body) == (200, "HIT", first)
    assert upstream.gets("/v2/tasks") == reads  # none of these spent quota
    # Another token's request never learns from this copy: it asks Harvest.
    _, h, _ = await get(http, base, "/v2/tasks", MEMBER_TOKEN_1, A1, **{"If-None-Match": etag})
    assert h["X-Cache"] == "BYPASS"
    assert upstream.gets("/v2/tasks") == reads + 1
    # Other conditions, no-cache, or a copy past its freshness: Harvest decides, as before.
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1,
                        **{"If-None-Match": etag, "Cache-Control": "no-cache"})  # fmt: skip
    assert h["X-Cache"] == "BYPASS"
    since = "Sat, 01 Jan 2000 00:00:00 GMT"
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1,
                        **{"If-None-Match": etag, "If-Modified-Since": since})  # fmt: skip
    assert h["X-Cache"] == "BYPASS"
    clock.advance(31)
    _, h, _ = await get(http, base, "/v2/tasks", ADMIN_TOKEN_1, A1, **{"If-None-Match": etag})
    assert h["X-Cache"] == "BYPASS"
    assert upstream.gets("/v2/tasks") == reads + 4
