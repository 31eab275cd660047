"""SIGTERM while ~200 requests are in flight or queued: `serve` as a real process in front of a
slow simulator. Every caller gets a whole answer (Harvest's 200, or a 503 JSON with Retry-After
for those still queued), nothing hangs, the process exits 0 within its shutdown timeout, and in
record mode the cassette on disk is whole and holds every exchange a caller got.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from gateway.simulator import SimConfig
from gateway.simulator.data import (
    ACCOUNT_ID_1,
    ACCOUNT_ID_2,
    ADMIN_TOKEN_1,
    ADMIN_TOKEN_2,
    headers_for,
)
from tests.support import free_port, project_root, wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CALLERS = 200
SHUTDOWN_TIMEOUT = 8.0
ACCOUNTS = [headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1), headers_for(ADMIN_TOKEN_2, ACCOUNT_ID_2)]


async def in_flight(http: aiohttp.ClientSession, url: str, seen: list[str]) -> float:
    async with http.get(url + "/metrics") as r:
        seen[:] = [await r.text()]
        for line in seen[0].splitlines():
            if line.startswith("harvestgw_in_flight_requests "):
                return float(line.split()[1])
    return 0.0


async def call(http: aiohttp.ClientSession, url: str, n: int) -> tuple[int, dict[str, str], Any]:
    async with http.get(f"{url}/v2/users/me?n={n}", headers=ACCOUNTS[n % 2]) as r:
        body = await r.read()  # raises if the body is cut short
        return r.status, dict(r.headers), json.loads(body)


async def sigterm_under_load(
    start_simulator, secrets, logs: Path, *extra: str
) -> tuple[list[Any], Any]:
    # 30 per 2 s per account: the first ~60 go upstream (and take 0.6 s), the rest queue.
    origin, sim = await start_simulator(
        SimConfig(general_limit=30, general_window=2.0, latency=0.6)
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets.gateways += 1
    # To a file, not a pipe: an unread pipe fills (64 KiB of access log) and blocks the gateway.
    log = await asyncio.to_thread(logs.open, "wb")
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--upstream", origin,
         "--id-upstream", origin, "--quota", "general=30/2s",
         "--shutdown-timeout", str(SHUTDOWN_TIMEOUT), *extra],
        cwd=project_root(), env={**os.environ, "PYTHONPATH": str(project_root())},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    try:
        await asyncio.to_thread(wait_port, port)
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        timeout = aiohttp.ClientTimeout(total=SHUTDOWN_TIMEOUT + 10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            calls = [asyncio.create_task(call(http, url, n)) for n in range(CALLERS)]
            deadline = time.monotonic() + 10
            metrics: list[str] = []
            while await in_flight(http, url, metrics) < CALLERS:  # every request is in the gateway
                assert time.monotonic() < deadline, "the requests never all arrived"
                await asyncio.sleep(0.05)
            secrets.add_text("metrics", "/metrics of serve under SIGTERM", metrics[0])
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            results = await asyncio.gather(*calls, return_exceptions=True)
        code = await asyncio.to_thread(proc.wait, SHUTDOWN_TIMEOUT + 5)
        assert time.monotonic() - signalled < SHUTDOWN_TIMEOUT + 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output = await asyncio.to_thread(logs.read_text)
        secrets.add_text("logs", "serve under SIGTERM (stdout+stderr)", output)
    assert code == 0, output[-2000:]
    assert sim.count(status=429) == 0
    return results, sim


def check_answers(results: list[Any]) -> list[dict[str, Any]]:
    """Every caller got a whole answer; returns the 200 bodies."""
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors[:3]
    ok = [body for status, _, body in results if status == 200]
    refused = [(h, body) for status, h, body in results if status != 200]
    assert all(status in (200, 503) for status, _, _ in results)
    for headers, body in refused:
        assert int(headers["Retry-After"]) >= 1
        assert body["error"] == "quota_wait_exceeded"
        assert body["reason"] == "shutting_down"
    assert all(body["id"] for body in ok)
    assert ok, "nothing was in flight when the signal came"
    assert refused, "nothing was queued when the signal came"
    return ok


async def test_sigterm_under_load_answers_everyone_and_exits_0(start_simulator, secrets, tmp_path):
    results, sim = await sigterm_under_load(start_simulator, secrets, tmp_path / "serve.log")
    ok = check_answers(results)
    assert len(ok) == sim.count(status=200)  # everything Harvest answered reached its caller


async def test_sigterm_while_recording_leaves_a_whole_cassette(start_simulator, secrets, tmp_path):
    cassettes = tmp_path / "cassettes"
    secrets.add_cassette_dir(cassettes)
    results, sim = await sigterm_under_load(
        start_simulator, secrets, tmp_path / "serve.log",
        "--mode", "record", "--record-mode", "all", "--cassette-dir", str(cassettes),
        "--cassette", "load",
    )  # fmt: skip
    ok = check_answers(results)
    requests, responses = FilesystemPersister.load_cassette(
        str(cassettes / "load.yaml"), yamlserializer
    )
    assert len(requests) == len(responses) == len(ok) == sim.count(status=200)
    assert {r["status"]["code"] for r in responses} == {200}
    assert [p.name for p in cassettes.iterdir() if p.name.startswith(".")] == []
