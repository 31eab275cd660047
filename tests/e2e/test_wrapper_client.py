"""An unmodified third-party client (getharvest-api-wrapper 0.1.1 from PyPI, synchronous
requests) through the gateway: it creates, reads, updates and deletes a time entry, and every
read after a write sees that write although the same reads are cached."""

from __future__ import annotations

import asyncio

import pytest
import requests
from getharvest_api_wrapper import HarvestAPI

from gateway.settings import Settings
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1

pytestmark = pytest.mark.e2e
Seen = list[tuple[str, int, str]]  # (step, status, X-Cache)


def lifecycle(base: str) -> tuple[Seen, dict[str, str]]:
    """The client's own calls, in order; what each answered, and the notes read back."""
    api = HarvestAPI("wrapper e2e (qa@example.com)", ADMIN_TOKEN_1, ACCOUNT_ID_1)
    api.HARVEST_BASE_URL = base + "/v2"  # its one setting: the only change an app makes
    seen: Seen = []
    notes: dict[str, str] = {}

    def note(step: str, resp: requests.Response) -> requests.Response:
        seen.append((step, resp.status_code, resp.headers.get("X-Cache", "")))
        return resp

    note("me", api.get_current_user())
    note("me again", api.get_current_user())
    existing = note("list", api.get_time_entries({"per_page": 1})).json()["time_entries"][0]
    created = note("create", api.create_time_entry({
        "project_id": existing["project"]["id"], "task_id": existing["task"]["id"],
        "spent_date": "2026-11-28", "hours": 1.5, "notes": "first",
    })).json()  # fmt: skip
    entry = created["id"]
    notes["read"] = note("read", api.get_time_entry_by_id(entry)).json()["notes"]
    notes["read again"] = note("read again", api.get_time_entry_by_id(entry)).json()["notes"]
    note("update", api.update_time_entry(entry, {"notes": "second"}))
    notes["after update"] = note("after update", api.get_time_entry_by_id(entry)).json()["notes"]
    listed = note("list again", api.get_time_entries({"per_page": 100})).json()["time_entries"]
    notes["listed"] = next(e["notes"] for e in listed if e["id"] == entry)
    note("delete", api.delete_time_entry(entry))
    note("after delete", api.get_time_entry_by_id(entry))
    note("no such project", api.get_project_by_id(999999999))
    return seen, notes


async def test_a_third_party_client_reads_its_own_writes_through_the_cache(
    start_simulator, start_gateway
):
    origin, _ = await start_simulator()
    url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))
    # Synchronous client, asynchronous gateway in this loop: the client gets a thread.
    seen, notes = await asyncio.to_thread(lifecycle, url)
    assert seen == [
        ("me", 200, "MISS"),
        ("me again", 200, "HIT"),
        ("list", 200, "MISS"),
        ("create", 201, "BYPASS"),
        ("read", 200, "MISS"),
        ("read again", 200, "HIT"),
        ("update", 200, "BYPASS"),
        ("after update", 200, "MISS"),  # the write dropped the cached copy
        ("list again", 200, "MISS"),
        ("delete", 200, "BYPASS"),
        ("after delete", 404, "MISS"),
        ("no such project", 404, "MISS"),
    ]
    assert notes == {"read": "first", "read again": "first", "after update": "second",
                     "listed": "second"}  # fmt: skip
