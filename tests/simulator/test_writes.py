from __future__ import annotations

from aiohttp import FormData

from gateway.simulator import MEMBER_TOKEN_1, SimConfig, Simulator, headers_for

NEW_ENTRY = {"project_id": 1120002, "task_id": 1130001, "spent_date": "2024-06-01", "hours": 2.5}


async def test_post_then_get(client, admin1):
    resp = await client.post("/v2/time_entries", json=NEW_ENTRY, headers=admin1)
    assert resp.status == 201
    created = await resp.json()
    origin = str(client.make_url("/")).rstrip("/")
    assert resp.headers["Location"] == f"{origin}/api/v2/time_entries/{created['id']}"
    assert created["hours"] == 2.5
    assert created["project"]["name"] == "Cedar Portfolio Site"
    assert created["user"]["id"] == 1100001
    assert created["is_running"] is False
    got = await client.get(f"/v2/time_entries/{created['id']}", headers=admin1)
    assert got.status == 200
    assert await got.json() == created
    page = await (await client.get("/v2/time_entries?per_page=1", headers=admin1)).json()
    assert page["total_entries"] == 251
    assert page["time_entries"][0]["id"] == created["id"]


async def test_location_prefix_configurable(aiohttp_client, clock, admin1):
    sim = Simulator(SimConfig(location_prefix="/v2", public_base="https://h.example"), clock=clock)
    client = await aiohttp_client(sim.app())
    resp = await client.post("/v2/time_entries", json=NEW_ENTRY, headers=admin1)
    created = await resp.json()
    assert resp.headers["Location"] == f"https://h.example/v2/time_entries/{created['id']}"


async def test_form_and_query_string_posts(client, admin1):
    form = {k: str(v) for k, v in NEW_ENTRY.items()}
    resp = await client.post("/v2/time_entries", data=form, headers=admin1)
    assert resp.status == 201
    resp = await client.post("/api/v2/time_entries", params=form, headers=admin1)
    assert resp.status == 201


async def test_member_creates_own_entry_only(client):
    member = headers_for(MEMBER_TOKEN_1, "111111")
    resp = await client.post("/v2/time_entries", json=NEW_ENTRY, headers=member)
    assert resp.status == 201
    assert (await resp.json())["user"]["id"] == 1100002
    resp = await client.post(
        "/v2/time_entries", json={**NEW_ENTRY, "user_id": 1100001}, headers=member
    )
    assert resp.status == 403


async def test_patch_changes_etag_and_if_none_match(client, admin1):
    path = "/v2/time_entries/115000001"
    first = await client.get(path, headers=admin1)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    assert first.headers["Cache-Control"] == "no-store"
    again = await client.get(path, headers=admin1)
    assert again.headers["ETag"] == etag
    cached = await client.get(path, headers={**admin1, "If-None-Match": etag})
    assert cached.status == 304
    assert await cached.read() == b""
    assert cached.headers["ETag"] == etag
    patched = await client.patch(path, json={"hours": 7.75, "notes": "changed"}, headers=admin1)
    assert patched.status == 200
    body = await patched.json()
    assert body["hours"] == 7.75
    assert body["notes"] == "changed"
    after = await client.get(path, headers={**admin1, "If-None-Match": etag})
    assert after.status == 200
    assert after.headers["ETag"] != etag
    assert after.headers["ETag"] == patched.headers["ETag"]


async def test_patch_project_relinks(client, admin1):
    resp = await client.patch(
        "/v2/time_entries/115000001", json={"project_id": 1120003}, headers=admin1
    )
    body = await resp.json()
    assert body["project"]["id"] == 1120003
    assert body["client"]["name"] == "Quarry Lane Bakery"


async def test_stop_restart(client, admin1):
    created = await (
        await client.post(
            "/v2/time_entries",
            json={k: v for k, v in NEW_ENTRY.items() if k != "hours"},
            headers=admin1,
        )
    ).json()
    assert created["is_running"] is True
    stopped = await client.patch(f"/v2/time_entries/{created['id']}/stop", headers=admin1)
    assert (await stopped.json())["is_running"] is False
    again = await client.patch(f"/v2/time_entries/{created['id']}/stop", headers=admin1)
    assert again.status == 422


async def test_delete(client, admin1):
    resp = await client.delete("/v2/time_entries/115000002", headers=admin1)
    assert resp.status == 200
    assert await resp.read() == b""
    assert (await client.get("/v2/time_entries/115000002", headers=admin1)).status == 404
    assert (await client.delete("/v2/time_entries/115000002", headers=admin1)).status == 404


async def test_state_is_per_simulator(aiohttp_client, clock, admin1):
    one, two = Simulator(clock=clock), Simulator(clock=clock)
    c1, c2 = await aiohttp_client(one.app()), await aiohttp_client(two.app())
    await c1.delete("/v2/time_entries/115000002", headers=admin1)
    assert (await c2.get("/v2/time_entries/115000002", headers=admin1)).status == 200


async def test_expense_multipart_receipt(client, admin1):
    form = FormData()
    form.add_field("project_id", "1120001")
    form.add_field("expense_category_id", "1170001")
    form.add_field("spent_date", "2024-05-30")
    form.add_field("total_cost", "42.10")
    form.add_field("notes", "Proof prints")
    form.add_field("receipt", b"GIF89a-fake", filename="proof.gif", content_type="image/gif")
    resp = await client.post("/v2/expenses", data=form, headers=admin1)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["total_cost"] == 42.1
    assert body["expense_category"]["name"] == "Printing"
    assert body["receipt"]["file_name"] == "proof.gif"
    assert body["receipt"]["file_size"] == len(b"GIF89a-fake")
    assert body["receipt"]["content_type"] == "image/gif"
    got = await client.get(f"/v2/expenses/{body['id']}", headers=admin1)
    assert (await got.json())["receipt"] == body["receipt"]


async def test_expense_missing_fields_422(client, admin1):
    resp = await client.post("/v2/expenses", json={"total_cost": 3}, headers=admin1)
    assert resp.status == 422
    assert "Expense category can't be blank" in (await resp.json())["message"]


async def test_client_create_and_not_removable(client, admin1):
    resp = await client.post("/v2/clients", json={"name": "Fresh Client"}, headers=admin1)
    assert resp.status == 201
    new = await resp.json()
    assert resp.headers["Location"].endswith(f"/api/v2/clients/{new['id']}")
    assert (await client.delete(f"/v2/clients/{new['id']}", headers=admin1)).status == 200
    busy = await client.delete("/v2/clients/1110001", headers=admin1)
    assert busy.status == 422
    assert busy.headers["Hint"].startswith("This client is not removable")
