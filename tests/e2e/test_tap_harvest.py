"""A real third-party Harvest client (tap-harvest 3.1.1 from PyPI) syncs through the gateway."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from gateway.settings import Settings
from gateway.simulator import SimConfig, Simulator
from gateway.simulator.data import (
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    REFRESH_TOKEN_1,
    TIME_ENTRIES_PER_ACCOUNT,
)
from tests.support import project_root

pytestmark = pytest.mark.e2e
# project_tasks and project_users are tap-harvest's names for /v2/{task,user}_assignments; it
# reads line items and user roles out of invoices, estimates and roles, and messages and
# payments from one request per invoice or estimate.
STREAMS = {"clients", "projects", "tasks", "time_entries", "users", "contacts", "expenses",
           "expense_categories", "project_tasks", "project_users", "roles", "user_roles",
           "invoices", "invoice_line_items", "invoice_messages", "invoice_payments",
           "invoice_item_categories", "estimates", "estimate_line_items", "estimate_messages",
           "estimate_item_categories"}  # fmt: skip


def tap_python() -> Path:
    exe = Path(
        os.environ.get("HARVEST_GATEWAY_TAP_PYTHON", project_root() / ".venv-tap/bin/python")
    )
    if not exe.exists():
        pytest.fail(f"{exe} is missing: `make install-test` creates the tap-harvest virtualenv")
    return exe


async def run_tap(gateway: str, id_prefix: str, *args: str) -> str:
    runner = Path(__file__).with_name("tap_harvest_runner.py")
    proc = await asyncio.create_subprocess_exec(
        str(tap_python()), str(runner), gateway, id_prefix, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


async def test_tap_harvest_syncs_through_the_gateway(start_gateway, tmp_path):
    sim = Simulator(SimConfig())
    upstream = TestServer(sim.app(), host="127.0.0.1")
    await upstream.start_server()
    try:
        origin = f"http://127.0.0.1:{upstream.port}"
        url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))
        config = tmp_path / "config.json"
        config.write_text(json.dumps({
            "refresh_token": REFRESH_TOKEN_1, "client_id": OAUTH_CLIENT_ID,
            "client_secret": OAUTH_CLIENT_SECRET, "start_date": "2000-01-01T00:00:00Z",
            "user_agent": "tap-harvest e2e (qa@example.com)",
        }))  # fmt: skip
        # Its Harvest ID calls (token refresh, accounts) both ways the gateway serves them: the
        # plain host swap of https://id.getharvest.com/api/v2, and the /id prefix.
        catalog = json.loads(await run_tap(url, "/api/v2", "--config", str(config), "--discover"))
        for stream in catalog["streams"]:
            chosen = stream["tap_stream_id"] in STREAMS
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = chosen
        catalog_file = tmp_path / "catalog.json"
        catalog_file.write_text(json.dumps(catalog))

        out = await run_tap(url, "/id/api/v2", "--config", str(config), "--catalog",
                            str(catalog_file))  # fmt: skip
    finally:
        await upstream.close()

    records = Counter(
        msg["stream"] for msg in map(json.loads, out.splitlines()) if msg.get("type") == "RECORD"
    )
    assert set(records) == STREAMS
    assert records["time_entries"] == TIME_ENTRIES_PER_ACCOUNT
    held = sim.accounts["111111"].collections  # what the simulator serves, by collection
    assert records["project_tasks"] == len(held["task_assignments"])
    assert records["project_users"] == len(held["user_assignments"])
    for stream in ("invoices", "invoice_messages", "invoice_payments", "estimates",
                   "estimate_messages", "roles"):  # fmt: skip
        assert records[stream] == len(held[stream]), stream
    for parent in ("invoices", "estimates"):
        stream = f"{parent[:-1]}_line_items"
        assert records[stream] == sum(len(r["line_items"]) for r in held[parent].values())
    assert records["user_roles"] == sum(len(r["user_ids"]) for r in held["roles"].values())
    # Every call, the two Harvest ID ones included, reached the simulator through the gateway.
    paths = {r.path for r in sim.log}
    assert {"/api/v2/oauth2/token", "/api/v2/accounts", "/v2/time_entries"} <= paths
    assert all(r.headers.get("User-Agent") == "tap-harvest e2e (qa@example.com)" for r in sim.log)
    assert sim.count(status=429) == 0
