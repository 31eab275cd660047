"""``harvest-gateway serve`` as a process: its runner answers malformed HTTP in JSON and its
limits come from the command line and the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.rawhttp import request_bytes, send_raw
from tests.support import free_port, wait_port

pytestmark = pytest.mark.e2e


async def test_serve_applies_cli_and_env_limits_and_stops_on_sigterm():
    port = free_port()
    env = {**os.environ, "HARVEST_GATEWAY_MAX_HEADERS": "10"}
    proc = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "gateway", "serve", "--port", str(port),
         "--max-header-size", "512", "--upstream", f"http://127.0.0.1:{free_port()}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_port, port)
        headers = {"Host": "x", "Connection": "close"}
        big = await send_raw(port, request_bytes("/v2/users/me", {**headers, "X-A": "a" * 600}))
        assert big.status == 431
        assert big.json()["error"] == "header_too_large"
        many = {f"X-{i}": "1" for i in range(12)}
        crowded = await send_raw(port, request_bytes("/healthz", {**headers, **many}))
        assert crowded.status == 431
        bad = await send_raw(port, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
        assert bad.status == 400
        assert bad.json()["error"] == "bad_request"
        ok = await send_raw(port, request_bytes("/healthz", headers))
        assert ok.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_port_is_one_line_and_a_failed_exit(workers: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ["--workers", "2", "--redis-url", "redis://127.0.0.1:1"] if workers > 1 else []
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port), *extra],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines == [f"harvest-gateway: cannot listen on 127.0.0.1:{port}: Address already in use "
                     "(--host, --port)"] * workers  # fmt: skip
