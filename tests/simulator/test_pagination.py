from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from gateway.simulator import ADMIN_TOKEN_1, SimConfig, Simulator, headers_for
from gateway.simulator.data import TIME_ENTRIES_PER_ACCOUNT


async def test_time_entries_links_are_absolute_and_walkable(client, admin1):
    resp = await client.get("/v2/time_entries", params={"per_page": "60"}, headers=admin1)
    assert resp.status == 200
    page = await resp.json()
    assert page["total_entries"] == TIME_ENTRIES_PER_ACCOUNT
    assert page["total_pages"] == 5
    assert page["page"] == 1
    assert page["next_page"] == 2
    assert page["previous_page"] is None
    origin = str(client.make_url("/")).rstrip("/")
    links = page["links"]
    assert links["first"] == f"{origin}/v2/time_entries?page=1&per_page=60&ref=first"
    assert links["last"] == f"{origin}/v2/time_entries?page=5&per_page=60&ref=last"
    assert links["previous"] is None
    seen = [e["id"] for e in page["time_entries"]]
    pages = 1
    while page["links"]["next"]:
        nxt = page["links"]["next"]
        assert nxt.startswith(f"{origin}/v2/time_entries?")
        assert parse_qs(urlsplit(nxt).query)["ref"] == ["next"]
        resp = await client.session.get(nxt, headers=admin1)
        assert resp.status == 200
        page = await resp.json()
        pages += 1
        seen += [e["id"] for e in page["time_entries"]]
    assert pages == 5
    assert page["page"] == 5
    assert page["next_page"] is None
    assert page["previous_page"] == 4
    assert len(page["time_entries"]) == TIME_ENTRIES_PER_ACCOUNT - 4 * 60
    assert len(seen) == len(set(seen)) == TIME_ENTRIES_PER_ACCOUNT
    assert page["links"]["previous"].endswith("page=4&per_page=60&ref=previous")


async def test_time_entries_sorted_newest_first(client, admin1):
    page = await (await client.get("/v2/time_entries", headers=admin1)).json()
    dates = [e["spent_date"] for e in page["time_entries"]]
    assert dates == sorted(dates, reverse=True)
    assert page["per_page"] == 2000
    assert page["total_pages"] == 1


async def test_filters_are_kept_in_links(client, admin1):
    params = {"per_page": "10", "project_id": "1120001", "from": "2024-04-01"}
    page = await (await client.get("/v2/time_entries", params=params, headers=admin1)).json()
    assert page["time_entries"]
    assert all(e["project"]["id"] == 1120001 for e in page["time_entries"])
    assert all(e["spent_date"] >= "2024-04-01" for e in page["time_entries"])
    query = parse_qs(urlsplit(page["links"]["next"]).query)
    assert query["project_id"] == ["1120001"]
    assert query["from"] == ["2024-04-01"]


async def test_credentials_never_echoed_in_links(client):
    params = {"access_token": ADMIN_TOKEN_1, "account_id": "111111", "per_page": "100"}
    resp = await client.get("/v2/time_entries", params=params, headers={"User-Agent": "T (t@t)"})
    assert resp.status == 200
    links = (await resp.json())["links"]
    assert all(ADMIN_TOKEN_1 not in (v or "") for v in links.values())
    assert "account_id" not in links["next"]


async def test_cursor_pagination_walks_clients(client, admin1):
    resp = await client.get("/v2/clients", params={"per_page": "1"}, headers=admin1)
    page = await resp.json()
    assert page["total_entries"] == 3
    assert page["total_pages"] == 3
    assert page["page"] == 1
    names = [c["name"] for c in page["clients"]]
    nxt = page["links"]["next"]
    query = parse_qs(urlsplit(nxt).query)
    assert query["ref"] == ["next_cursor"]
    decoded = json.loads(base64.b64decode(query["cursor"][0]))
    assert decoded == {"after": {"id": page["clients"][0]["id"]}}
    middle = None
    while nxt:
        page = await (await client.session.get(nxt, headers=admin1)).json()
        names += [c["name"] for c in page["clients"]]
        middle = middle or page
        nxt = page["links"]["next"]
    assert names == ["Quarry Lane Bakery", "Cedar & Pine Architects", "Blue Heron Books"]
    assert middle is not None
    assert middle["page"] is None
    assert middle["next_page"] is None
    assert page["page"] == 3
    assert page["previous_page"] == 2
    prev = page["links"]["previous"]
    assert parse_qs(urlsplit(prev).query)["ref"] == ["previous_cursor"]
    back = await (await client.session.get(prev, headers=admin1)).json()
    assert [c["name"] for c in back["clients"]] == ["Cedar & Pine Architects"]


async def test_page_param_on_cursor_endpoint_gives_page_links(client, admin1):
    params = {"per_page": "2", "page": "1"}
    page = await (await client.get("/v2/projects", params=params, headers=admin1)).json()
    assert page["links"]["next"].endswith("page=2&per_page=2&ref=next")


async def test_bad_cursor_is_422(client, admin1):
    resp = await client.get("/v2/tasks", params={"cursor": "!!notbase64"}, headers=admin1)
    assert resp.status == 422


async def test_per_page_over_2000_is_422(client, admin1):
    resp = await client.get("/v2/time_entries", params={"per_page": "2001"}, headers=admin1)
    assert resp.status == 422
    assert "per_page" in (await resp.json())["message"]


async def test_public_base_and_api_alias(aiohttp_client, clock):
    sim = Simulator(SimConfig(public_base="https://api.harvestapp.com"), clock=clock)
    client = await aiohttp_client(sim.app())
    headers = headers_for(ADMIN_TOKEN_1, "111111")
    page = await (await client.get("/api/v2/tasks?page=1&per_page=2", headers=headers)).json()
    assert (
        page["links"]["next"]
        == "https://api.harvestapp.com/api/v2/tasks?page=2&per_page=2&ref=next"
    )
    same = await (await client.get("/v2/tasks.json?page=1&per_page=2", headers=headers)).json()
    assert same["tasks"] == page["tasks"]


async def test_assignments_are_listed_flat_and_per_project(client, admin1):
    flat = await (await client.get("/v2/task_assignments", headers=admin1)).json()
    projects = await (await client.get("/v2/projects", headers=admin1)).json()
    tasks = await (await client.get("/v2/tasks", headers=admin1)).json()
    assert flat["total_entries"] == len(projects["projects"]) * len(tasks["tasks"])
    one = projects["projects"][0]["id"]
    resp = await client.get(f"/v2/projects/{one}/task_assignments", params={"per_page": "1"},
                            headers=admin1)  # fmt: skip
    page = await resp.json()
    assert page["total_entries"] == len(tasks["tasks"])
    assert {a["project"]["id"] for a in page["task_assignments"]} == {one}
    origin = str(client.make_url("/")).rstrip("/")
    assert page["links"]["next"].startswith(f"{origin}/v2/projects/{one}/task_assignments?")
    # The ids time entries carry are the assignments' own.
    entry = (await (await client.get("/v2/time_entries", headers=admin1)).json())["time_entries"][0]
    users = await (await client.get("/v2/user_assignments", headers=admin1)).json()
    assert entry["user_assignment"]["id"] in {a["id"] for a in users["user_assignments"]}
    assert entry["task_assignment"]["id"] in {a["id"] for a in flat["task_assignments"]}
    missing = await client.get("/v2/projects/999/user_assignments", headers=admin1)
    assert missing.status == 404
    not_harvests = await client.get(f"/v2/task_assignments/{entry['task_assignment']['id']}",
                                    headers=admin1)  # fmt: skip
    assert not_harvests.status == 404  # Harvest serves single assignments per project only
    first = page["task_assignments"][0]
    single = await client.get(f"/v2/projects/{one}/task_assignments/{first['id']}",
                              headers=admin1)  # fmt: skip
    assert await single.json() == first
    other = projects["projects"][1]["id"]  # the same assignment under another project: none
    elsewhere = await client.get(f"/v2/projects/{other}/task_assignments/{first['id']}",
                                 headers=admin1)  # fmt: skip
    assert elsewhere.status == 404
