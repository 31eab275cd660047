"""Managed mode in front of the simulator: callers hold gateway keys, the gateway holds tokens."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.core.credentials import hash_key
from gateway.settings import Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import ACCOUNT_ID_1, ACCOUNT_ID_2, ADMIN_TOKEN_1, ADMIN_TOKEN_2

READER, WRITER = "gw-key-reader-0001", "gw-key-writer-0002"
UA = {"User-Agent": "Managed (qa@example.com)"}


@pytest.fixture
async def managed(start_simulator, start_gateway, tmp_path, monkeypatch):
    origin, sim = await start_simulator(SimConfig())
    secret = tmp_path / "harvest_222222"
    secret.write_text(ADMIN_TOKEN_2 + "\n")
    monkeypatch.setenv("SIM_HARVEST_TOKEN_1", ADMIN_TOKEN_1)
    creds = tmp_path / "credentials.toml"
    creds.write_text(f"""
[[callers]]
name = "reader"
key_sha256 = "{hash_key(READER)}"
accounts = ["{ACCOUNT_ID_1}"]
methods = ["GET"]

[[callers]]
name = "writer"
key_sha256 = "{hash_key(WRITER)}"
accounts = ["*"]
methods = ["GET", "POST", "PATCH", "DELETE"]

[accounts.{ACCOUNT_ID_1}]
token_env = "SIM_HARVEST_TOKEN_1"

[accounts.{ACCOUNT_ID_2}]
token_file = "{secret}"
""")
    url, _ = await start_gateway(
        Settings(upstream=origin, id_upstream=origin, credentials=str(creds))
    )
    async with aiohttp.ClientSession(base_url=url) as session:
        yield session, sim


def as_caller(key: str, account: str = ACCOUNT_ID_1, header: str = "Authorization"):
    value = f"Bearer {key}" if header == "Authorization" else key
    return {**UA, header: value, "Harvest-Account-Id": account}


async def test_the_gateway_swaps_the_key_for_the_accounts_token(managed):
    session, sim = managed
    for header in ("Authorization", "X-Gateway-Key"):
        headers = {**as_caller(READER, header=header), "Cache-Control": "no-store"}
        async with session.get("/v2/users/me", headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["id"]
    assert [e.token for e in sim.log] == [ADMIN_TOKEN_1, ADMIN_TOKEN_1]
    for entry in sim.log:
        sent = {k.lower(): v for k, v in entry.headers.items()}
        assert READER not in str(sent)
        assert "x-gateway-key" not in sent
        assert sent["harvest-account-id"] == ACCOUNT_ID_1


async def test_token_from_a_secret_file_serves_the_second_account(managed):
    session, sim = managed
    async with session.get("/v2/company", headers=as_caller(WRITER, ACCOUNT_ID_2)) as r:
        assert r.status == 200
    assert sim.log[-1].token == ADMIN_TOKEN_2
    assert sim.log[-1].account_id == ACCOUNT_ID_2


@pytest.mark.parametrize(
    ("headers", "method", "path", "status", "error"),
    [
        (UA | {"Harvest-Account-Id": ACCOUNT_ID_1}, "GET", "/v2/users/me", 401, "invalid_token"),
        (as_caller("not-a-key"), "GET", "/v2/users/me", 401, "invalid_token"),
        (as_caller(ADMIN_TOKEN_1), "GET", "/v2/users/me", 401, "invalid_token"),
        (as_caller(READER, ACCOUNT_ID_2), "GET", "/v2/users/me", 403, "forbidden"),
        (as_caller(READER), "POST", "/v2/time_entries", 403, "forbidden"),
        (as_caller(READER), "GET", f"/v2/users/me?access_token={ADMIN_TOKEN_2}", 400,
         "access_token_not_allowed"),
        (as_caller(READER), "GET", f"/v2/users/me?account_id={ACCOUNT_ID_2}", 400,
         "invalid_account_id"),
        (as_caller(WRITER), "GET", "/id/api/v2/accounts", 403, "forbidden"),
    ],
)  # fmt: skip
async def test_refusals_are_json_and_never_reach_harvest(
    managed, headers, method, path, status, error
):
    session, sim = managed
    async with session.request(
        method, path, headers=headers, json={} if method == "POST" else None
    ) as r:
        assert r.status == status
        assert r.content_type == "application/json"
        body = await r.json()
    assert body["error"] == error
    if status == 403:
        assert body["message"]  # Harvest's own 403 field, for clients that read it
    assert sim.log == []


async def test_writes_within_scope_go_through(managed):
    session, sim = managed
    headers = as_caller(WRITER)
    async with session.get("/v2/projects", headers=headers) as r:
        project = (await r.json())["projects"][0]
    async with session.get("/v2/tasks", headers=headers) as r:
        task = (await r.json())["tasks"][0]
    entry = {"project_id": project["id"], "task_id": task["id"], "spent_date": "2024-06-03",
             "hours": 1.0}  # fmt: skip
    async with session.post("/v2/time_entries", json=entry, headers=headers) as r:
        assert r.status == 201
    assert sim.log[-1].method == "POST"
    assert sim.log[-1].token == ADMIN_TOKEN_1


async def test_pass_through_is_still_the_default(start_simulator, start_gateway):
    origin, sim = await start_simulator(SimConfig())
    url, _ = await start_gateway(Settings(upstream=origin))
    headers = {**UA, "Authorization": f"Bearer {ADMIN_TOKEN_1}", "Harvest-Account-Id": ACCOUNT_ID_1}
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/users/me", headers=headers) as r:
        assert r.status == 200
    assert sim.log[-1].token == ADMIN_TOKEN_1


async def test_a_cached_answer_is_refused_to_keys_that_may_not_have_it(managed):
    session, sim = managed
    for expected in ("MISS", "HIT"):  # the second is answered before the request is rebuilt
        async with session.get("/v2/users/me", headers=as_caller(READER)) as r:
            assert (r.status, r.headers["X-Cache"]) == (200, expected)
    for headers, status in (
        (as_caller("not-a-key"), 401),
        (as_caller(ADMIN_TOKEN_1), 401),  # a Harvest token is not a gateway key
        (as_caller(READER, ACCOUNT_ID_2), 403),
        ({**as_caller(READER), "X-Gateway-Key": "not-a-key"}, 401),
    ):
        async with session.get("/v2/users/me", headers=headers) as r:
            assert r.status == status, headers
            assert r.headers["X-Cache"] == "BYPASS"  # refused: nothing cached or looked up
    assert len(sim.log) == 1
