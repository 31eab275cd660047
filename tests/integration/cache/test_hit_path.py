"""Fresh hits answered before an Exchange is built: the same answer, checks and accounting as
the cache stage's own hits, and nothing the full path would refuse."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from io import StringIO

from multidict import CIMultiDict

from gateway.settings import Settings
from gateway.simulator.data import ACCOUNT_ID_1 as A1
from gateway.simulator.data import ADMIN_TOKEN_1, MEMBER_TOKEN_1, headers_for
from gateway.web import keys
from gateway.web.cache_admin import CACHE
from tests.integration.cache.conftest import get

ME = "/v2/users/me"
# Headers that differ between any two requests, whichever way they were answered.
_PER_REQUEST = {"x-request-id", "date", "age"}


def same_headers(headers: CIMultiDict[str]) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers.items() if k.lower() not in _PER_REQUEST)


async def test_a_fast_hit_answers_as_the_cache_stage_does(start_gateway, upstream, http):
    base, app = await start_gateway(Settings(upstream=upstream.url))
    proxy = app[keys.PROXY]
    await get(http, base, ME, ADMIN_TOKEN_1, A1)  # MISS: stored
    status, fast, body = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert len(proxy.plans) == 1  # answered by the hit path
    proxy.cache = None  # the same hit, by the cache stage inside the pipeline
    status2, staged, body2 = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert (status, fast["X-Cache"], body) == (status2, staged["X-Cache"], body2) == (
        200, "HIT", body)  # fmt: skip
    assert same_headers(fast) == same_headers(staged)
    assert upstream.gets(ME) == 1
    assert app[CACHE].counts["HIT"] == 2


async def test_what_the_full_path_refuses_is_refused_after_a_hit(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    await get(http, base, ME, ADMIN_TOKEN_1, A1)
    headers = headers_for(ADMIN_TOKEN_1, A1)
    no_agent = {k: v for k, v in headers.items() if k != "User-Agent"}
    async with http.get(base + ME, headers=no_agent, skip_auto_headers=["User-Agent"]) as r:
        assert (r.status, (await r.json())["error"]) == (400, "missing_user_agent")
    async with http.get(base + ME, headers=headers, data=b'{"a": 1}') as r:
        assert (r.status, (await r.json())["error"]) == (400, "get_with_body")
    wrong = {**headers, "Authorization": "Bearer not-a-harvest-token"}
    async with http.get(base + ME, headers=wrong) as r:
        assert r.status == 401  # Harvest's answer, from upstream: never the admin's copy
    _, h, member = await get(http, base, ME, MEMBER_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"
    assert json.loads(member)["id"] != 0
    reads = upstream.gets(ME)
    status, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1, **{"If-None-Match": 'W/"x"'})
    # Conditional: the stage decides, not the hit path (here: its copy, the tag not matching).
    assert (status, h["X-Cache"], upstream.gets(ME)) == (200, "HIT", reads)


async def test_request_and_trace_ids_do_not_make_new_shapes(start_gateway, upstream, http):
    base, app = await start_gateway(Settings(upstream=upstream.url))
    await get(http, base, ME, ADMIN_TOKEN_1, A1)
    for n in range(5):
        _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1, **{"X-Request-Id": f"rid-{n}"})
        assert (h["X-Cache"], h["X-Request-Id"]) == ("HIT", f"rid-{n}")
    trace = f"00-{'a' * 32}-{'b' * 16}-01"
    for n in range(3):  # a traced app's context differs on every request too
        _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1, traceparent=trace[:-4] + f"{n:04d}")
        assert h["X-Cache"] == "HIT"
    assert len(app[keys.PROXY].plans) == 1
    _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1, **{"X-Other": "1"})
    assert h["X-Cache"] == "HIT"
    assert len(app[keys.PROXY].plans) == 2  # any other header is part of the shape


async def test_a_fast_hit_is_counted_and_logged(start_gateway, upstream, http):
    log = StringIO()
    base, app = await start_gateway(Settings(upstream=upstream.url), log_stream=log)
    await get(http, base, "/v2/users/me", ADMIN_TOKEN_1, A1)
    _, h, _ = await get(http, base, "/api/v2/users/me.json", ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"
    app[keys.LOGGER].info("flush")  # lines are written once per loop tick
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    (hit,) = [line for line in lines if line.get("cache") == "HIT"]
    assert {k: hit[k] for k in ("request_id", "account_id", "method", "route", "status")} == {
        "request_id": h["X-Request-Id"],
        "account_id": A1,
        "method": "GET",
        "route": "/v2/users/me",
        "status": 200,
    }
    metrics = app[keys.METRICS]
    assert metrics.cache_requests.value("hit") == 1
    assert metrics.requests.value("/v2/users/me", "GET", "2xx", "HIT") == 1


async def test_after_a_write_the_hit_path_misses(start_gateway, upstream, http):
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    _, _, page = await get(http, base, "/v2/time_entries", ADMIN_TOKEN_1, A1)
    item = f"/v2/time_entries/{json.loads(page)['time_entries'][0]['id']}"
    await get(http, base, item, ADMIN_TOKEN_1, A1)
    _, old, _ = await get(http, base, item, ADMIN_TOKEN_1, A1)
    assert old["X-Cache"] == "HIT"
    async with http.patch(
        base + item, json={"notes": "fast path"}, headers=headers_for(ADMIN_TOKEN_1, A1)
    ) as r:
        assert r.status == 200
    _, h, body = await get(http, base, item, ADMIN_TOKEN_1, A1)
    assert (h["X-Cache"], json.loads(body)["notes"]) == ("MISS", "fast path")
    # The new entry's hits carry its own headers, not those built for the old one's.
    _, hit, body = await get(http, base, item, ADMIN_TOKEN_1, A1)
    assert (hit["X-Cache"], json.loads(body)["notes"]) == ("HIT", "fast path")
    assert hit["ETag"] == h["ETag"] != old["ETag"]


async def test_a_hit_carries_the_origins_date_and_its_age(start_gateway, upstream, http):
    # As an HTTP cache does: the stored answer's Date, and Age for the time kept since.
    base, _ = await start_gateway(Settings(upstream=upstream.url))
    _, first, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)  # MISS: stored
    await asyncio.sleep(1.1)
    _, hit, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert hit["X-Cache"] == "HIT"
    assert hit["Date"] == first["Date"]
    assert int(hit["Age"]) >= 1


async def test_a_plan_does_not_keep_a_purged_entry_alive(start_gateway, upstream, http):
    # Plans outlive entries (the memo holds thousands); a purged body must be freed.
    base, app = await start_gateway(Settings(upstream=upstream.url))
    await get(http, base, ME, ADMIN_TOKEN_1, A1)
    _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "HIT"
    (plan,) = [p for p in app[keys.PROXY].plans._plans.values() if p is not None]
    assert plan.answer is not None
    entry = weakref.ref(plan.answer.entry())
    assert entry() is not None
    assert await app[CACHE].purge(None, None) == 1  # everything
    gc.collect()
    assert entry() is None
    _, h, _ = await get(http, base, ME, ADMIN_TOKEN_1, A1)
    assert h["X-Cache"] == "MISS"
