from __future__ import annotations

import gzip
import json

from gateway.simulator import (
    ADMIN_TOKEN_1,
    MEMBER_TOKEN_1,
    OUTSIDER_TOKEN,
    REFRESH_TOKEN_1,
    headers_for,
)
from gateway.simulator.__main__ import parse_args

UA = {"User-Agent": "SimTest (dev@example.com)"}


async def test_gzip_when_accepted(aiohttp_client, sim, admin1):
    raw = await aiohttp_client(sim.app(), auto_decompress=False)
    resp = await raw.get("/v2/time_entries", headers={**admin1, "Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]
    body = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(body)
    data = json.loads(gzip.decompress(body))
    assert data["total_entries"] == 250
    plain = await raw.get("/v2/time_entries", headers={**admin1, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert json.loads(await plain.read()) == data
    assert plain.headers["ETag"] == resp.headers["ETag"]


async def test_common_headers(client, admin1):
    resp = await client.get("/v2/users/me", headers=admin1)
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert len(resp.headers["X-Request-Id"]) == 32
    assert float(resp.headers["X-Runtime"]) >= 0
    assert resp.headers["Cache-Control"] == "no-store"


async def test_resources_answer(client, admin1):
    for path, key in [
        ("/v2/company", "name"),
        ("/v2/users", "users"),
        ("/v2/users/1100002", "first_name"),
        ("/v2/clients/1110001", "name"),
        ("/v2/projects/1120001", "client"),
        ("/v2/tasks", "tasks"),
        ("/v2/contacts", "contacts"),
        ("/v2/expenses", "expenses"),
        ("/v2/expense_categories", "expense_categories"),
    ]:
        resp = await client.get(path, headers=admin1)
        assert resp.status == 200, path
        assert key in await resp.json(), path


async def test_reports(client, admin1):
    reports = [
        "time/clients",
        "time/projects",
        "time/tasks",
        "time/team",
        "expenses/clients",
        "expenses/projects",
        "expenses/categories",
        "expenses/team",
        "uninvoiced",
    ]
    for name in reports:
        path = f"/v2/reports/{name}"
        missing = await client.get(path, headers=admin1)
        assert missing.status == 422, name
        assert "message" in await missing.json()
        resp = await client.get(path, params={"from": "20240101", "to": "20240531"}, headers=admin1)
        assert resp.status == 200, name
        body = await resp.json()
        assert body["results"], name
        assert "from=20240101" in body["links"]["first"]
    budget = await (await client.get("/v2/reports/project_budget", headers=admin1)).json()
    assert {r["project_name"] for r in budget["results"]} >= {"Heron Newsletter"}
    too_long = await client.get(
        "/v2/reports/time/team", params={"from": "20220101", "to": "20240101"}, headers=admin1
    )
    assert too_long.status == 422


async def test_member_report_only_own(client):
    params = {"from": "20230701", "to": "20240531"}
    member = headers_for(MEMBER_TOKEN_1, "111111")
    body = await (await client.get("/v2/reports/time/team", params=params, headers=member)).json()
    assert [r["user_name"] for r in body["results"]] == ["Owen Carter"]


async def test_oauth_refresh_and_accounts(client):
    resp = await client.post(
        "/api/v2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN_1, "client_id": "c"},
        headers=UA,
    )
    assert resp.status == 200
    tok = await resp.json()
    assert tok["token_type"] == "bearer"
    assert tok["expires_in"] > 0
    assert tok["refresh_token"]
    accounts = await client.get(
        "/api/v2/accounts", headers={**UA, "Authorization": f"Bearer {tok['access_token']}"}
    )
    body = await accounts.json()
    assert body["accounts"][0]["id"] == 111111
    assert body["accounts"][0]["product"] == "harvest"
    me = await client.get("/v2/users/me", headers=headers_for(tok["access_token"], "111111"))
    assert me.status == 200
    again = await client.post(
        "/api/v2/oauth2/token",
        json={"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]},
        headers=UA,
    )
    assert again.status == 200


async def test_oauth_bad_grant(client):
    for data in (
        {"grant_type": "refresh_token", "refresh_token": "bogus"},
        {"grant_type": "password", "refresh_token": REFRESH_TOKEN_1},
    ):
        resp = await client.post("/api/v2/oauth2/token", data=data, headers=UA)
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_grant"


async def test_accounts_for_static_and_outsider_tokens(client):
    resp = await client.get(
        "/api/v2/accounts", headers={**UA, "Authorization": f"Bearer {ADMIN_TOKEN_1}"}
    )
    assert [a["name"] for a in (await resp.json())["accounts"]] == ["Larkspur Studio"]
    out = await client.get(
        "/api/v2/accounts", headers={**UA, "Authorization": f"Bearer {OUTSIDER_TOKEN}"}
    )
    assert (await out.json())["accounts"] == []
    bad = await client.get("/api/v2/accounts", headers={**UA, "Authorization": "Bearer nope"})
    assert bad.status == 401


async def test_admin_endpoints(sim, client, admin1):
    await client.get("/v2/company", headers=admin1)
    await client.get("/v2/company?x=1", headers={**admin1, "Harvest-Account-Id": "222222"})
    log = await (await client.get("/__sim__/log")).json()
    assert log["count"] == 2
    first = log["requests"][0]
    assert first["path"] == "/v2/company"
    assert first["status"] == 200
    assert first["account_id"] == "111111"
    assert isinstance(first["t"], float)
    assert log["requests"][1]["query"] == "x=1"
    assert log["requests"][1]["status"] == 401
    assert sim.log[0].token == ADMIN_TOKEN_1
    added = await client.post("/__sim__/faults", json={"kind": "status:503", "times": 1})
    assert added.status == 201
    assert (await client.get("/v2/company", headers=admin1)).status == 503
    cfg = await client.post("/__sim__/config", json={"latency": 0.0, "general_limit": 50})
    assert (await cfg.json())["general_limit"] == 50
    assert sim.config.general_limit == 50
    await client.delete("/v2/time_entries/115000001", headers=admin1)
    assert (await client.post("/__sim__/reset")).status == 200
    assert sim.log == []
    assert (await client.get("/v2/time_entries/115000001", headers=admin1)).status == 200


async def test_reset_log_and_count(sim, client, admin1):
    await client.get("/v2/company", headers=admin1)
    await client.get("/v2/nope", headers=admin1)
    assert sim.count() == 2
    assert sim.count(status=404) == 1
    sim.reset_log()
    assert sim.count() == 0


def test_cli_args():
    args = parse_args(["--port", "9100", "--general-limit", "7", "--retry-after", "never"])
    assert args.port == 9100
    assert args.general_limit == 7
    assert args.retry_after == "never"


async def test_head_and_json_suffix(client, admin1):
    head = await client.head("/v2/users/me.json", headers=admin1)
    assert head.status == 200
    assert head.headers["ETag"].startswith('W/"')
    assert await head.read() == b""


async def test_a_bounded_log_keeps_the_latest_requests(aiohttp_client, sim, admin1):
    sim.config.log_limit = 10  # a long-running simulator's bound (the CLI's default: 10,000)
    client = await aiohttp_client(sim.app())
    for n in range(25):
        resp = await client.get(f"/v2/time_entries?page={n + 1}", headers=admin1)
        assert resp.status == 200
    assert 5 <= len(sim.log) <= 10
    assert [r.query for r in sim.log][-3:] == ["page=23", "page=24", "page=25"]
    assert parse_args(["--log-limit", "0"]).log_limit == 0  # 0: keep every request
