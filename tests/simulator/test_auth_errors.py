from __future__ import annotations

from aiohttp import ClientResponse

from gateway.simulator import (
    ADMIN_TOKEN_1,
    ADMIN_TOKEN_2,
    MEMBER_TOKEN_1,
    OUTSIDER_TOKEN,
    headers_for,
)
from gateway.simulator.responses import INVALID_TOKEN_DESCRIPTION

UA = {"User-Agent": "SimTest (dev@example.com)"}


async def _assert_401(resp: ClientResponse) -> None:
    assert resp.status == 401
    assert await resp.json() == {
        "error": "invalid_token",
        "error_description": INVALID_TOKEN_DESCRIPTION,
    }
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="Rack::OAuth2 Protected')
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_missing_token_is_401(client):
    await _assert_401(await client.get("/v2/users/me", headers={**UA, "Harvest-Account-Id": "1"}))


async def test_unknown_token_is_401(client):
    await _assert_401(await client.get("/v2/users/me", headers=headers_for("nope", "111111")))


async def test_missing_account_id_is_401(client):
    headers = {**UA, "Authorization": f"Bearer {ADMIN_TOKEN_1}"}
    await _assert_401(await client.get("/v2/users/me", headers=headers))


async def test_token_of_other_account_is_401(client):
    await _assert_401(
        await client.get("/v2/users/me", headers=headers_for(ADMIN_TOKEN_2, "111111"))
    )
    await _assert_401(
        await client.get("/v2/users/me", headers=headers_for(OUTSIDER_TOKEN, "111111"))
    )


async def test_query_string_credentials(client):
    params = {"access_token": ADMIN_TOKEN_1, "account_id": "111111"}
    resp = await client.get("/v2/users/me", params=params, headers=UA)
    assert resp.status == 200
    assert (await resp.json())["first_name"] == "Maya"


async def test_missing_user_agent_is_400(client):
    headers = headers_for(ADMIN_TOKEN_1, "111111")
    del headers["User-Agent"]
    resp = await client.get("/v2/users/me", headers=headers, skip_auto_headers=["User-Agent"])
    assert resp.status == 400


async def test_get_with_body_is_400(client, admin1):
    resp = await client.get("/v2/users/me", headers=admin1, data=b"null")
    assert resp.status == 400
    assert resp.content_type == "text/plain"
    assert await resp.text() == "HTTP GET requests with a body are not accepted."


async def test_member_forbidden_on_admin_lists(client):
    headers = headers_for(MEMBER_TOKEN_1, "111111")
    for path in ("/v2/clients", "/v2/contacts", "/v2/clients/1110001"):
        resp = await client.get(path, headers=headers)
        assert resp.status == 403, path
        assert await resp.json() == {"message": "Not authorized!"}
        assert resp.headers["Hint"] == "Not authorized!"


async def test_unknown_id_is_json_404(client, admin1):
    resp = await client.get("/v2/time_entries/9999999999", headers=admin1)
    assert resp.status == 404
    assert await resp.json() == {"status": 404, "error": "Not Found"}


async def test_unknown_route_is_html_404(client, admin1):
    for path in ("/v2/projects//user_assignments", "/v2/nonsense", "/favicon.ico"):
        resp = await client.get(path, headers=admin1)
        assert resp.status == 404, path
        assert resp.content_type == "text/html"
        assert "<title>HARVEST: Can\u02bct find page</title>" in await resp.text()


async def test_invalid_time_entry_is_422(client, admin1):
    resp = await client.post("/v2/time_entries", json={"hours": 1}, headers=admin1)
    assert resp.status == 422
    msg = (await resp.json())["message"]
    assert msg.startswith("Project can't be blank, Task can't be blank, Spent date can't be blank")


async def test_admin_sees_all_member_sees_own(client):
    admin = await (
        await client.get("/v2/time_entries", headers=headers_for(ADMIN_TOKEN_1, "111111"))
    ).json()
    member = await (
        await client.get("/v2/time_entries", headers=headers_for(MEMBER_TOKEN_1, "111111"))
    ).json()
    me = await (
        await client.get("/v2/users/me", headers=headers_for(MEMBER_TOKEN_1, "111111"))
    ).json()
    users = {e["user"]["id"] for e in admin["time_entries"]}
    assert len(users) == 4
    assert {e["user"]["id"] for e in member["time_entries"]} == {me["id"]}
    assert 0 < member["total_entries"] < admin["total_entries"]
    other = next(e for e in admin["time_entries"] if e["user"]["id"] != me["id"])
    resp = await client.get(
        f"/v2/time_entries/{other['id']}", headers=headers_for(MEMBER_TOKEN_1, "111111")
    )
    assert resp.status == 404


async def test_accounts_are_disjoint(client):
    one = await (
        await client.get("/v2/projects", headers=headers_for(ADMIN_TOKEN_1, "111111"))
    ).json()
    two = await (
        await client.get("/v2/projects", headers=headers_for(ADMIN_TOKEN_2, "222222"))
    ).json()
    assert not {p["id"] for p in one["projects"]} & {p["id"] for p in two["projects"]}
    assert not {p["name"] for p in one["projects"]} & {p["name"] for p in two["projects"]}
    te2 = await client.get(
        "/v2/time_entries/115000001", headers=headers_for(ADMIN_TOKEN_2, "222222")
    )
    assert te2.status == 404
