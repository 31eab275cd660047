"""Record through the gateway from the simulator, stop the simulator, replay the same answers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway.settings import Mode, RecordMode, Settings
from gateway.simulator import (
    ACCOUNT_ID_1,
    ACCOUNT_ID_2,
    ADMIN_TOKEN_1,
    ADMIN_TOKEN_2,
    REFRESH_TOKEN_1,
    SimConfig,
    Simulator,
    headers_for,
)
from gateway.stores.cassette_files import meta_path

PUBLIC = "http://gateway.test"
UA = "CassetteTests (dev@example.com)"


async def start_sim(**config) -> tuple[TestServer, Simulator]:
    sim = Simulator(SimConfig(**config))
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    return server, sim


def origin(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def settings_for(mode: Mode, upstream: str, cassettes: Path, **kw) -> Settings:
    return Settings(
        mode=mode,
        upstream=upstream,
        id_upstream=upstream,
        public_url=PUBLIC,
        cassette_dir=str(cassettes),
        cassette="session",
        **kw,
    )


H1 = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1, UA)
H2 = headers_for(ADMIN_TOKEN_2, ACCOUNT_ID_2, UA)
# (method, path, headers, body): a small session touching both upstreams, writes and repeats.
SESSION: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("GET", "/v2/users/me", H1, None),
    ("GET", "/v2/users/me", H2, None),  # same request, other account
    ("GET", "/v2/clients?per_page=1&page=1", H1, None),
    ("GET", "/v2/clients?page=2&per_page=1", H1, None),
    ("GET", "/v2/time_entries?per_page=2", H1, None),
    ("POST", "/v2/clients", {**H1, "Content-Type": "application/json"}, b'{"name":"New Co"}'),
    ("GET", "/v2/clients?per_page=100", H1, None),  # sees the new client
    ("GET", "/v2/clients?per_page=100", H1, None),  # a second episode of the same request
    ("GET", "/v2/projects/999999999", H1, None),  # a 404
    ("GET", "/id/api/v2/accounts", {"Authorization": f"Bearer {ADMIN_TOKEN_1}", "User-Agent": UA},
     None),
    (
        "POST",
        "/id/api/v2/oauth2/token",
        {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA},
        f"grant_type=refresh_token&refresh_token={REFRESH_TOKEN_1}&client_id=c1".encode(),
    ),
]  # fmt: skip


async def run_session(base: str) -> list[tuple[int, bytes, dict[str, str]]]:
    out = []
    async with aiohttp.ClientSession() as http:
        for method, path, headers, body in SESSION:
            async with http.request(method, base + path, headers=headers, data=body) as resp:
                out.append((resp.status, await resp.read(), dict(resp.headers)))
    return out


async def test_record_then_replay_without_the_simulator(start_gateway, tmp_path):
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    recorded = await run_session(base)
    assert [h.get("X-Gateway-Record") for _, _, h in recorded] == ["recorded"] * len(SESSION)
    assert recorded[6][1] != recorded[2][1]  # the write showed up
    await server.close()  # the upstream is gone from here on

    replay_base, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path))
    replayed = await run_session(replay_base)
    # Identical, except the OAuth token response, whose secrets never reached the cassette.
    assert [(s, b) for s, b, _ in replayed[:-1]] == [(s, b) for s, b, _ in recorded[:-1]]
    token = json.loads(replayed[-1][1])
    assert replayed[-1][0] == recorded[-1][0] == 200
    assert token["access_token"] == token["refresh_token"] == "REDACTED"
    assert token["expires_in"] == json.loads(recorded[-1][1])["expires_in"]
    assert all(h["X-Gateway-Replay"] == "hit" for _, _, h in replayed)
    # Links in bodies point at the gateway's public URL, as they did while recording.
    assert f"{PUBLIC}/v2/clients" in json.loads(replayed[2][1])["links"]["next"]


async def test_the_file_is_redacted_vcrpy_shaped_and_has_a_sidecar(start_gateway, tmp_path):
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    await run_session(base)
    await server.close()
    path = tmp_path / "session.yaml"
    text = path.read_text("ascii")
    for secret in (ADMIN_TOKEN_1, ADMIN_TOKEN_2, REFRESH_TOKEN_1, "sim-oauth-", "sim-refresh-"):
        assert secret not in text
    assert "127.0.0.1" in text  # the real upstream's URIs, not the gateway's
    assert PUBLIC not in text  # links restored to the upstream's
    doc = yaml.safe_load(text)
    assert set(doc) == {"interactions", "version"}
    assert doc["version"] == 1
    for item in doc["interactions"]:
        assert set(item["request"]) == {"body", "headers", "method", "uri"}
        assert item["request"]["uri"].startswith(upstream)
        assert all(isinstance(v, list) for v in item["request"]["headers"].values())
        assert all(isinstance(v, list) for v in item["response"]["headers"].values())
        lowered = {k.lower() for k in item["response"]["headers"]}
        assert "content-encoding" not in lowered
        assert "transfer-encoding" not in lowered
        body = item["response"]["body"]["string"]
        assert item["response"]["headers"]["Content-Length"] == [str(len(body.encode()))]
        assert "message" in item["response"]["status"]
    first = doc["interactions"][0]["request"]["headers"]
    assert first["Authorization"] == ["REDACTED"]
    assert first["Harvest-Account-Id"][0].startswith("acct-sha256:")
    token = doc["interactions"][-1]
    assert "refresh_token=REDACTED" in token["request"]["body"]
    assert json.loads(token["response"]["body"]["string"])["access_token"] == "REDACTED"
    meta = json.loads(meta_path(path).read_text())
    assert len(meta["interactions"]) == len(SESSION)
    assert "request.headers.Authorization" in meta["interactions"][0]["redacted"]


async def test_account_in_query_is_redacted_and_still_matches(start_gateway, tmp_path):
    server, _ = await start_sim()
    upstream = origin(server)
    query = f"/v2/users/me?access_token={ADMIN_TOKEN_1}&account_id={ACCOUNT_ID_1}"
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    async with (
        aiohttp.ClientSession(headers={"User-Agent": UA}) as http,
        http.get(base + query) as r,
    ):
        assert r.status == 200
        original = await r.read()
    await server.close()
    text = (tmp_path / "session.yaml").read_text()
    assert ADMIN_TOKEN_1 not in text
    assert f"account_id={ACCOUNT_ID_1}" not in text
    replay, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path))
    async with aiohttp.ClientSession(headers={"User-Agent": UA}) as http:
        async with http.get(replay + query) as resp:
            assert resp.status == 200
            assert await resp.read() == original
        other = f"/v2/users/me?access_token={ADMIN_TOKEN_2}&account_id={ACCOUNT_ID_2}"
        async with http.get(replay + other) as resp:
            assert resp.status == 501  # another account never gets this account's answer
            miss = await resp.json()
    assert miss["closest"][0]["differs"] == {
        "account": {"request": miss["closest"][0]["differs"]["account"]["request"],
                    "recorded": miss["closest"][0]["differs"]["account"]["recorded"]},
    }  # fmt: skip


async def test_concurrent_recording_into_one_cassette_loses_nothing(start_gateway, tmp_path):
    server, _ = await start_sim(general_limit=10_000)
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    n = 60
    async with aiohttp.ClientSession(headers=H1) as http:

        async def one(i: int) -> int:
            async with http.get(f"{base}/v2/time_entries?page={i % 5 + 1}&per_page=3&x={i}") as r:
                assert r.headers["X-Gateway-Record"] == "recorded"
                return r.status

        statuses = await asyncio.gather(*(one(i) for i in range(n)))
    assert statuses == [200] * n
    await server.close()
    doc = yaml.safe_load((tmp_path / "session.yaml").read_text())
    uris = sorted(i["request"]["uri"] for i in doc["interactions"])
    assert len(uris) == n
    assert len(set(uris)) == n
    meta = json.loads(meta_path(tmp_path / "session.yaml").read_text())
    assert len(meta["interactions"]) == n


async def test_replay_plays_repeats_in_order_then_misses_or_repeats_last(start_gateway, tmp_path):
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http:
        bodies = []
        for name in ("A", "B"):
            async with http.post(f"{base}/v2/clients", json={"name": name}) as r:
                assert r.status == 201
            async with http.get(f"{base}/v2/clients?per_page=100") as r:
                bodies.append(await r.read())
    await server.close()
    assert bodies[0] != bodies[1]
    settings = settings_for(Mode.REPLAY, upstream, tmp_path)
    for repeat_last in (False, True):
        replay, _ = await start_gateway(replace(settings, replay_repeat_last=repeat_last))
        async with aiohttp.ClientSession(headers=H1) as http:
            got = []
            for _ in range(3):
                async with http.get(f"{replay}/v2/clients?per_page=100") as r:
                    got.append((r.status, await r.read(), r.headers.get("X-Gateway-Replay")))
        assert got[0] == (200, bodies[0], "hit")
        assert got[1] == (200, bodies[1], "hit")
        if repeat_last:
            assert got[2] == (200, bodies[1], "repeat")
        else:
            assert got[2][0] == 501
            assert got[2][2] == "miss"
            assert json.loads(got[2][1])["reason"] == "all_played"


@pytest.mark.parametrize(
    ("mode", "expect"),
    [
        # A second pass over an existing cassette: what reaches the simulator, what is saved.
        (RecordMode.ONCE, {"live": 0, "saved": 2, "third": 501}),
        (RecordMode.NEW_EPISODES, {"live": 1, "saved": 3, "third": 200}),
        (RecordMode.ALL, {"live": 3, "saved": 3, "third": 200}),
        (RecordMode.NONE, {"live": 0, "saved": 2, "third": 501}),
    ],
)
async def test_record_modes_on_an_existing_cassette(start_gateway, tmp_path, mode, expect):
    server, sim = await start_sim()
    upstream = origin(server)
    first = settings_for(Mode.RECORD, upstream, tmp_path)
    base, _ = await start_gateway(first)
    async with aiohttp.ClientSession(headers=H1) as http:
        for _ in range(2):
            async with http.get(f"{base}/v2/users/me") as r:
                assert r.headers["X-Gateway-Record"] == "recorded"  # fresh once: all live
    sim.reset_log()
    base2, _ = await start_gateway(replace(first, record_mode=mode))
    statuses = []
    async with aiohttp.ClientSession(headers=H1) as http:
        for _ in range(3):
            async with http.get(f"{base2}/v2/users/me") as r:
                statuses.append(r.status)
    await server.close()
    assert statuses[:2] == [200, 200]
    assert statuses[2] == expect["third"]
    assert len(sim.log) == expect["live"]
    doc = yaml.safe_load((tmp_path / "session.yaml").read_text())
    assert len(doc["interactions"]) == expect["saved"]


async def test_new_episodes_keeps_recording_a_repeated_request(start_gateway, tmp_path):
    """vcrpy #753: the fifth request replays the fourth, just recorded; here it goes live."""
    server, sim = await start_sim()
    settings = settings_for(Mode.RECORD, origin(server), tmp_path)
    base, _ = await start_gateway(replace(settings, record_mode=RecordMode.NEW_EPISODES))
    async with aiohttp.ClientSession(headers=H1) as http:
        for _ in range(3):
            async with http.get(f"{base}/v2/company") as r:
                assert r.status == 200
    await server.close()
    assert len(sim.log) == 3
    doc = yaml.safe_load((tmp_path / "session.yaml").read_text())
    assert len(doc["interactions"]) == 3


async def test_cassette_header_selects_and_traversal_is_refused(start_gateway, tmp_path):
    server, _ = await start_sim()
    base, _ = await start_gateway(settings_for(Mode.RECORD, origin(server), tmp_path / "c"))
    async with aiohttp.ClientSession(headers=H1) as http:
        async with http.get(f"{base}/v2/company", headers={"X-Gateway-Cassette": "team/a"}) as r:
            assert r.status == 200
        for bad in ("../escape", "/etc/passwd", "a/../../b", ".hidden", "a\\b", "a//b"):
            async with http.get(f"{base}/v2/company", headers={"X-Gateway-Cassette": bad}) as r:
                assert r.status == 400, bad
                assert (await r.json())["error"] == "invalid_cassette"
    await server.close()
    assert (tmp_path / "c" / "team" / "a.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


async def test_a_token_shaped_string_is_never_written(start_gateway, tmp_path):
    server, _ = await start_sim()
    base, _ = await start_gateway(settings_for(Mode.RECORD, origin(server), tmp_path))
    leaky = {"name": "1234567.pt.AbCdEfGhIjKlMnOpQrStUvWxYz"}  # echoed back by the upstream
    async with aiohttp.ClientSession(headers=H1) as http:
        async with http.post(f"{base}/v2/clients", json=leaky) as r:
            assert r.status == 201  # the caller still gets its answer
            assert r.headers["X-Gateway-Record"].startswith("refused")
        async with http.get(f"{base}/v2/company") as r:
            assert r.headers["X-Gateway-Record"] == "recorded"
    await server.close()
    text = (tmp_path / "session.yaml").read_text()
    assert "AbCdEfGhIjKlMnOpQrStUvWxYz" not in text
    assert "/v2/company" in text
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
        exposed = await r.text()
    assert 'harvestgw_cassette_interactions_total{outcome="refused"} 1.0' in exposed
    assert 'harvestgw_cassette_interactions_total{outcome="recorded"} 1.0' in exposed


async def test_a_miss_explains_itself(start_gateway, tmp_path):
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http:
        for path in ("/v2/clients?page=1&per_page=2", "/v2/projects?page=1", "/v2/company"):
            async with http.get(base + path) as r:
                assert r.status == 200
    await server.close()
    replay, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http:
        async with http.get(f"{replay}/v2/clients?per_page=2&page=3") as r:
            assert r.status == 501
            assert r.headers["X-Gateway-Replay"] == "miss"
            miss = await r.json()
        async with http.get(replay + "/v2/company", headers={"X-Gateway-Cassette": "nope"}) as r:
            assert r.status == 501
            absent = await r.json()
        async with http.get(f"{replay}/metrics") as r:
            exposed = await r.text()
    assert miss["error"] == "replay_miss"
    assert miss["reason"] == "no_match"
    assert "the closest differ in query" in miss["error_description"]
    assert miss["request"] == f"GET {upstream}/v2/clients?per_page=2&page=3"
    best = miss["closest"][0]
    assert best["request"] == f"GET {upstream}/v2/clients?page=1&per_page=2"
    assert best["differs"] == {
        "query": {"request": "page=3&per_page=2", "recorded": "page=1&per_page=2",
                  "only_in_request": "page=3", "only_in_recorded": "page=1"},
    }  # fmt: skip
    assert miss["interactions"] == {"recorded": 3, "played": 0}
    assert absent["reason"] == "cassette_not_found"
    assert 'harvestgw_cassette_interactions_total{outcome="missed"} 2.0' in exposed


async def test_admin_lists_and_rewinds_cassettes_and_readiness_needs_the_dir(
    start_gateway, tmp_path
):
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http, http.get(f"{base}/v2/company") as r:
        assert r.status == 200
    await server.close()
    replay, _ = await start_gateway(
        replace(settings_for(Mode.REPLAY, upstream, tmp_path), admin_token="admin-secret")
    )
    missing, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path / "nope"))
    async with aiohttp.ClientSession(headers=H1) as http:
        for expected in (200, 501):
            async with http.get(f"{replay}/v2/company") as r:
                assert r.status == expected
        async with http.get(f"{replay}/_gateway/cassettes") as r:
            listing = await r.json()
        async with http.post(f"{replay}/_gateway/cassettes/rewind") as r:
            assert r.status == 401  # H1's bearer is not the admin token
        auth = {"Authorization": "Bearer admin-secret"}
        async with http.post(f"{replay}/_gateway/cassettes/rewind", headers=auth) as r:
            assert (await r.json()) == {"rewound": ["session"]}
        async with http.get(f"{replay}/v2/company") as r:
            assert r.status == 200  # from the top again
        async with http.get(f"{replay}/readyz") as r:
            assert r.status == 200
        async with http.get(f"{missing}/readyz") as r:
            assert r.status == 503
    assert listing["cassettes"] == [
        {"name": "session", "existed": True, "interactions": 1, "played": 1, "recorded": 0}
    ]


async def test_an_absorbed_429_never_reaches_the_cassette(start_gateway, tmp_path):
    # a short window, so the 429's Retry-After (and the gateway's wait) is about a second
    server, sim = await start_sim(retry_after="always", general_window=1.0)
    sim.faults.add("429", path_prefix="/v2/users/me", times=1)
    base, _ = await start_gateway(settings_for(Mode.RECORD, origin(server), tmp_path))
    async with aiohttp.ClientSession() as http, http.get(base + "/v2/users/me", headers=H1) as resp:
        assert resp.status == 200
        assert resp.headers["X-Gateway-Record"] == "recorded"
    await server.close()
    assert [r.status for r in sim.log] == [429, 200]  # the 429 happened upstream...
    doc = yaml.safe_load((tmp_path / "session.yaml").read_text())
    statuses = [i["response"]["status"]["code"] for i in doc["interactions"]]
    assert statuses == [200]  # ...but only what the caller saw is on tape


async def test_a_recorded_429_replays_as_a_503(start_gateway, tmp_path):
    # A cassette recorded straight from Harvest (not through the gateway) may hold its throttle;
    # replayed, it is what the gateway would have answered: callers never see a 429.
    upstream = "http://127.0.0.1:9"
    throttled = {
        "request": {"body": None, "headers": {}, "method": "GET", "uri": upstream + "/v2/users/me"},
        "response": {
            "body": {"string": ""},
            "headers": {"Content-Type": ["text/html"], "Retry-After": ["7"]},
            "status": {"code": 429, "message": "Too Many Requests"},
        },
    }
    (tmp_path / "session.yaml").write_text(
        yaml.safe_dump({"version": 1, "interactions": [throttled]})
    )
    base, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http, http.get(f"{base}/v2/users/me") as r:
        assert r.status == 503
        assert r.headers["Retry-After"] == "7"
        assert (await r.json())["reason"] == "upstream_rate_limited"


async def test_replay_says_it_has_no_quota(start_gateway, tmp_path):
    base, _ = await start_gateway(settings_for(Mode.REPLAY, "http://127.0.0.1:9", tmp_path))
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_gateway/quota") as r:
        assert r.status == 200
        assert await r.json() == {"enabled": False, "accounts": {}}
