"""An unmodified Node.js client (node-harvest-api 1.0.6 from npm) through the gateway: another
language's HTTP stack, Harvest's ``/api/v2`` prefix, pages followed by their ``next_page``
number, and a client that sends ``Content-Type: application/json`` on bodiless GETs."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1, TIME_ENTRIES_PER_ACCOUNT
from tests.support import project_root

pytestmark = pytest.mark.e2e
USER_AGENT = "node e2e (qa@example.com)"


def node_client_dir() -> Path:
    here = project_root() / "tests" / "e2e" / "node"
    if shutil.which("node") is None:
        pytest.fail("node is missing: `make install-test` installs Node.js with the test tools")
    if not (here / "node_modules" / "node-harvest-api").is_dir():
        pytest.fail(f"{here}/node_modules is missing: `make install-test` runs npm ci there")
    return here


async def drive(gateway: str) -> dict[str, Any]:
    here = node_client_dir()
    proc = await asyncio.create_subprocess_exec(
        "node", str(here / "drive.js"), gateway, ACCOUNT_ID_1, ADMIN_TOKEN_1, USER_AGENT,
        cwd=here, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def test_a_node_client_works_through_the_gateway(start_simulator, start_gateway):
    origin, sim = await start_simulator()
    url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))

    seen = await drive(url)

    assert seen["me"] == seen["meAgain"] == "maya@larkspur.example"
    assert seen["users"] == len(sim.accounts[ACCOUNT_ID_1].collections["users"])
    # All pages arrived once each, followed by number through the gateway.
    assert seen["timeEntries"] == seen["distinctTimeEntries"] == TIME_ENTRIES_PER_ACCOUNT
    page1, page2 = seen["projectPages"]
    projects = sim.accounts[ACCOUNT_ID_1].collections["projects"]  # by id
    assert len(projects) == 4  # so two pages of two hold each of them once
    assert sorted(page1 + page2) == sorted(projects)
    assert seen["invoiceStates"] == ["draft", "open", "paid"]
    assert seen["paidInvoiceMessages"] == ["send"]
    assert seen["created"] == {"hours": 1.5, "notes": "first"}
    # Reads after its write see the write, though the same read was cached just before.
    assert (seen["read"], seen["readAgain"], seen["updated"], seen["afterUpdate"]) == (
        "first", "first", "second", "second",
    )  # fmt: skip
    # Its DELETE carries none of its headers: refused locally with a JSON error saying what is
    # missing (Harvest would refuse it too), and never sent on.
    assert seen["deleted"] == {
        "error": "missing_user_agent",
        "error_description": "Harvest requires a User-Agent naming your app and a contact, "
        "e.g. 'MyApp (you@example.com)'.",
    }
    assert seen["afterDelete"] == "second"

    calls = Counter((r.method, r.path) for r in sim.log)
    assert calls[("GET", "/v2/users/me")] == 1  # the second was a cache hit
    assert not any(method == "DELETE" for method, _ in calls)
    assert all(r.headers.get("User-Agent") == USER_AGENT for r in sim.log)
    assert all(r.token == ADMIN_TOKEN_1 and r.account_id == ACCOUNT_ID_1 for r in sim.log)
