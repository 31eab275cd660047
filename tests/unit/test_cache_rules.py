"""Cache keys, directives, freshness and invalidation prefixes: pure rules."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.cache_rules import (
    Directive,
    directive,
    freshness,
    invalidation_prefixes,
    key_matches,
    key_parts,
    none_match,
    normal_prefix,
    normal_query,
    not_modified_headers,
    prefix_matches,
    storable,
    stored_headers,
)
from gateway.policy.load import load_policy
from gateway.stores.cache import MemoryTier
from gateway.stores.envelope import Entry, decode, encode

RULES = load_policy(None).cache


def key(
    account: str = "1", principal: str = "p", path: str = "/v2/users/me", query: str = ""
) -> str:
    parts = key_parts(
        account=account, principal=principal, method="GET", path=path, raw_query=query
    )
    assert parts is not None
    return parts.key


def test_key_folds_aliases_and_sorts_the_query() -> None:
    assert key(path="/v2/users/me.json") == key(path="/v2/users/me")
    assert key(query="b=2&a=1") == key(query="a=1&b=2")
    assert key(query="a=%7E") == key(query="a=~")
    assert key(query="page=2") != key(query="page=1")
    assert key(query="cursor=abc&ref=next_cursor") != key(query="cursor=abd&ref=next_cursor")


def test_identity_params_leave_the_query_but_not_the_identity() -> None:
    assert normal_query("access_token=secret&account_id=1&page=2") == "page=2"
    assert key(principal="p1") != key(principal="p2")
    assert key(account="1") != key(account="2")
    assert "secret" not in key(query="access_token=secret&page=2")


def test_no_identity_no_key() -> None:
    assert key_parts(account=None, principal="p", method="GET", path="/v2/x", raw_query="") is None
    assert key_parts(account="1", principal=None, method="GET", path="/v2/x", raw_query="") is None


@pytest.mark.parametrize(
    ("cache_control", "pragma", "expected"),
    [
        (None, None, Directive.USE),
        ("no-cache", None, Directive.REFRESH),
        ("max-age=0", None, Directive.REFRESH),
        ("no-store", None, Directive.NO_STORE),
        ("max-age=60", None, Directive.USE),
        (None, "no-cache", Directive.REFRESH),
    ],
)
def test_directive(cache_control, pragma, expected) -> None:
    assert directive(cache_control, pragma) is expected


def test_freshness_windows() -> None:
    assert freshness(100.0, 30, 60, 129.9).fresh
    f = freshness(100.0, 30, 60, 130.0)
    assert not f.fresh
    assert f.servable_stale
    assert f.age == 30.0
    assert not freshness(100.0, 30, 60, 190.0).servable_stale


def ttl_of(template: str) -> float | None:
    rule = RULES.rule_for(template)
    return rule.ttl if rule else None


def test_policy_routes_freshness() -> None:
    assert ttl_of("/v2/company") == 300
    assert ttl_of("/v2/users/me") == 300
    assert ttl_of("/v2/time_entries") == 30
    assert ttl_of("/v2/reports/time/clients") == 300


def test_writes_invalidate_item_collection_and_derived() -> None:
    prefixes = invalidation_prefixes(RULES, "/v2/time_entries/17")
    assert prefixes[0] == "/v2/time_entries"
    assert "/v2/reports/time/" in prefixes
    k_item = key(path="/v2/time_entries/17")
    k_page = key(path="/v2/time_entries", query="page=2")
    k_report = key(path="/v2/reports/time/clients", query="from=20240101&to=20240131")
    k_other = key(path="/v2/clients")
    for k in (k_item, k_page, k_report):
        assert key_matches(k, "1", prefixes)
    assert not key_matches(k_other, "1", prefixes)
    assert not key_matches(k_item, "2", prefixes), "another account's entries stay"
    assert not key_matches(key(path="/v2/time_entries_x"), "1", ("/v2/time_entries",))


def test_admin_prefixes_are_normalised() -> None:
    assert normal_prefix("/api/v2/users/me.json") == "/v2/users/me"
    assert normal_prefix("/v2/reports/") == "/v2/reports/"


def test_only_whole_200s_are_storable() -> None:
    assert storable(200, b"{}", [("Content-Type", "application/json")], 100)
    assert not storable(404, b"{}", [], 100)
    assert not storable(200, b"x" * 101, [], 100)
    assert not storable(200, b"{}", [("Set-Cookie", "a=b")], 100)
    kept = stored_headers([("Content-Type", "a"), ("Date", "x"), ("X-Request-Id", "r")])
    assert kept == (("Content-Type", "a"), ("Date", "x"))  # the origin's Date stays (with Age)


def entry(body: bytes = b'{"a":1}', stored_at: float = 1000.0) -> Entry:
    return Entry(
        200, "OK", (("Content-Type", "application/json"),), body, stored_at, 30.0, 60.0, 'W/"e"'
    )


def test_envelope_round_trip_and_rejects_garbage() -> None:
    e = entry(body=bytes(range(256)))
    assert decode(encode(e)) == e
    assert decode(encode(e)[:-1]) is None
    assert decode(b"PICKLE" + encode(e)[6:]) is None
    assert decode(b"") is None


def test_memory_tier_stays_within_its_bounds() -> None:
    async def flood() -> None:
        tier = MemoryTier(max_entries=1000, max_bytes=20_000)
        for i in range(5000):
            await tier.put(key(query=f"page={i}"), entry(body=b"x" * (i % 300)), gen=0)
            assert tier.bytes <= 20_000
            assert len(tier) <= 1000
        assert tier.evictions > 0
        assert tier.bytes == sum(size for size, _ in tier._meta.values())
        # the newest survive, the oldest went first
        assert await tier.get(key(query="page=4999"), 1000.0) is not None
        assert await tier.get(key(query="page=0"), 1000.0) is None

    asyncio.run(flood())


def test_memory_tier_expires_and_invalidates_and_rejects_fills_older_than_a_write() -> None:
    async def run() -> None:
        tier = MemoryTier(max_entries=10, max_bytes=100_000)
        k = key(path="/v2/time_entries/5")
        gen = await tier.generation("1")
        assert await tier.put(k, entry(), gen=gen)
        assert await tier.get(k, 1089.0) is not None
        assert await tier.get(k, 1090.0) is None, "past ttl + stale"
        assert await tier.put(k, entry(), gen=gen)
        assert await tier.invalidate("1", ("/v2/time_entries",)) == 1
        assert await tier.get(k, 1000.0) is None
        assert not await tier.put(k, entry(), gen=gen), "a fill that began before the write"
        assert await tier.put(k, entry(), gen=await tier.generation("1"))
        await tier.invalidate(None, None)
        assert len(tier) == 0
        assert tier.bytes == 0

    asyncio.run(run())


def test_the_hit_paths_peek_reads_what_aiocache_holds() -> None:
    """``peek`` reads aiocache's memory backend directly (no await): it must see exactly what
    aiocache's own public ``get`` returns, before and after writes, purges and a clear."""

    async def run() -> None:
        tier = MemoryTier(max_entries=10, max_bytes=100_000)
        k = key(path="/v2/users/me")
        assert tier.peek(k, 1000.0) is None
        stored = entry()
        assert await tier.put(k, stored, gen=0)
        assert tier.peek(k, 1000.0) is stored
        assert await tier._cache.get(k) is stored  # aiocache's public read agrees
        assert tier.peek(k, 1090.0) is None  # expired: never answered
        await tier.clear()  # aiocache replaces its dict here
        assert tier.peek(k, 1000.0) is None
        assert await tier.put(k, stored, gen=0)
        assert tier.peek(k, 1000.0) is await tier._cache.get(k) is stored
        await tier.invalidate("1", None)
        assert tier.peek(k, 1000.0) is None

    asyncio.run(run())


def test_callers_reaching_different_origins_never_share_an_entry():
    from gateway.core.cache_rules import key_parts as parts_of

    def key(origin: str) -> str:
        parts = parts_of(account="1", principal="p", method="GET", path="/v2/users",
                         raw_query="page=2", public_origin=origin)  # fmt: skip
        assert parts is not None
        return parts.key

    assert key("http://a.internal") != key("http://b.internal")
    assert key("http://a.internal") == key("http://a.internal")


@pytest.mark.parametrize(
    ("write", "cached"),
    [
        # an assignment changes every user's view of their projects, not only /users/me's
        ("/v2/projects/1/user_assignments", "/v2/users/7/project_assignments"),
        ("/v2/projects/1/user_assignments", "/v2/users/me/project_assignments"),
        # an invoice made from tracked time marks those entries and expenses billed
        ("/v2/invoices", "/v2/time_entries"),
        ("/v2/invoices", "/v2/expenses/3"),
        # renames: records embed the {id, name} of what they use
        ("/v2/clients/5", "/v2/time_entries"),
        ("/v2/clients/5", "/v2/contacts"),
        ("/v2/projects/9", "/v2/time_entries"),
        ("/v2/tasks/2", "/v2/time_entries"),
        ("/v2/users/4", "/v2/time_entries"),
        ("/v2/expense_categories/8", "/v2/expenses"),
    ],
)
def test_the_shipped_policy_drops_what_a_write_makes_wrong(write: str, cached: str) -> None:
    assert any(prefix_matches(p, cached) for p in invalidation_prefixes(RULES, write))


def test_a_304_refreshes_the_stored_headers_it_names() -> None:
    from gateway.core.cache_rules import revalidated_headers

    stored = (("Content-Type", "application/json"), ("Date", "old"), ("ETag", 'W/"1"'))
    fresh = [("Date", "new"), ("X-Request-Id", "r"), ("Content-Length", "0")]
    assert revalidated_headers(stored, fresh) == (
        ("Content-Type", "application/json"),
        ("ETag", 'W/"1"'),
        ("Date", "new"),
    )


def test_if_none_match_compares_weakly_and_reads_lists():
    etag = 'W/"4bbe8ff8"'
    assert none_match(etag, etag)
    assert none_match('"4bbe8ff8"', etag)  # weak comparison: W/ set aside on either side
    assert none_match('W/"0000", W/"4bbe8ff8"', etag)
    assert none_match(" * ", etag)
    assert not none_match('W/"4bbe8ff"', etag)
    assert not none_match('"0000", "1111"', etag)


def test_a_304_keeps_validators_and_caching_metadata_only():
    headers = (("Content-Type", "application/json"), ("ETag", 'W/"1"'), ("vary", "Origin"),
               ("Cache-Control", "no-store"), ("Date", "x"), ("X-Runtime", "0.1"))  # fmt: skip
    assert not_modified_headers(headers) == (
        ("ETag", 'W/"1"'), ("vary", "Origin"), ("Cache-Control", "no-store"), ("Date", "x")
    )  # fmt: skip
