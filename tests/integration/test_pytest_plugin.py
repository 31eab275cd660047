"""The pytest plugin app teams use, and the demo cassette it ships with."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import httpx
import pytest
import requests

from tests.support import project_root

HEADERS = {
    "Authorization": "Bearer offline-token",
    "Harvest-Account-Id": "111111",
    "User-Agent": "Plugin test (dev@example.com)",
}


@pytest.mark.harvest_cassette("demo/harvest-basics")
def test_the_demo_replays_through_the_fixture_with_a_sync_client(harvest_gateway):
    me = requests.get(f"{harvest_gateway}/v2/users/me", headers=HEADERS, timeout=5)
    assert me.status_code == 200
    assert me.headers["X-Gateway-Replay"] == "hit"
    assert me.json()["first_name"] == "Maya"
    page = requests.get(f"{harvest_gateway}/v2/projects?per_page=2", headers=HEADERS, timeout=5)
    # Pagination links point back at the gateway, so following them stays offline.
    nxt = page.json()["links"]["next"]
    assert nxt.startswith(harvest_gateway)
    second = requests.get(nxt, headers=HEADERS, timeout=5)
    assert second.status_code == 200, second.text
    assert second.json()["links"]["next"] is None
    assert {p["id"] for p in second.json()["projects"]}.isdisjoint(
        p["id"] for p in page.json()["projects"]
    )
    miss = requests.get(f"{harvest_gateway}/v2/tasks", headers=HEADERS, timeout=5)
    assert miss.status_code == 501
    assert miss.json()["error"] == "replay_miss"


async def test_the_factory_serves_async_clients_and_other_cassettes(harvest_gateway_factory):
    url = harvest_gateway_factory("demo/harvest-basics", repeat_last=True)
    async with httpx.AsyncClient(headers=HEADERS) as http:
        bodies = [(await http.get(f"{url}/v2/company")).json()["name"] for _ in range(3)]
    assert bodies == ["Larkspur Studio"] * 3  # repeat_last keeps answering the one recording


@pytest.mark.e2e
def test_the_readme_example_runs_in_a_fresh_project(tmp_path):
    """The entry point loads the plugin in a project that only installed harvest-gateway."""
    shutil.copytree(project_root() / "cassettes" / "demo", tmp_path / "cassettes" / "demo")
    (tmp_path / "pytest.ini").write_text("[pytest]\nharvest_cassette_dir = cassettes\n")
    (tmp_path / "test_app.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import requests

            HEADERS = {"Authorization": "Bearer offline", "Harvest-Account-Id": "111111",
                       "User-Agent": "MyApp (me@example.com)"}

            @pytest.mark.harvest_cassette("demo/harvest-basics")
            def test_me(harvest_gateway):
                r = requests.get(f"{harvest_gateway}/v2/users/me", headers=HEADERS)
                assert r.status_code == 200
                assert r.json()["email"] == "maya@larkspur.example"
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
