"""Helpers for the quota tests: a simulator on a real socket, a policy file, traffic."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.simulator import SimConfig, Simulator, headers_for
from gateway.simulator.ratelimit import max_in_window
from tests.support import free_port, project_root, wait_port

# No cache rules: every request must reach the simulator (the quota is what is under test).
POLICY = """
name = "quota-test"
[quotas.general]
limit = {limit}
window = "{window}s"
[quotas.reports]
limit = 100
window = "15m"
prefixes = ["/v2/reports/"]
methods = ["GET"]
[queue]
max_wait = "{max_wait}s"
margin = "{margin}s"
default_penalty = "{penalty}s"
fallback_share = 0.34
"""


def policy_file(
    directory: Path,
    *,
    limit: int,
    window: float,
    max_wait: float = 60.0,
    margin: float = 0.05,
    penalty: float = 1.0,
) -> str:
    path = directory / "quota-policy.toml"
    text = POLICY.format(
        limit=limit, window=window, max_wait=max_wait, margin=margin, penalty=penalty
    )
    path.write_text(text)
    return str(path)


@asynccontextmanager
async def simulator(config: SimConfig) -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(config)
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield sim, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def caller_headers(token: str, account: str, **extra: str) -> dict[str, str]:
    # no-cache: a cache stage (when present) must not answer these; each one spends quota
    return {**headers_for(token, account), "Cache-Control": "no-cache", **extra}


async def fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], method: str = "GET"
) -> tuple[int, dict[str, str]]:
    body = {"name": "x"} if method in ("POST", "PATCH") else None
    async with session.request(method, url, headers=headers, json=body) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


async def burst(
    session: aiohttp.ClientSession, urls: list[tuple[str, dict[str, str]]]
) -> list[tuple[int, dict[str, str]]]:
    return await asyncio.gather(*(fetch(session, u, h) for u, h in urls))


class Processes:
    """Gateways and a simulator as real processes, run from the worktree; killed on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        root = project_root()
        env = {**os.environ, "PYTHONPATH": str(root)}
        env = {k: v for k, v in env.items() if not k.startswith("HARVEST_GATEWAY_")}
        log = (self.workdir / log_name).open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.procs.append(proc)
        return proc

    def simulator(self, *, limit: int, window: float, retry_after: str = "always") -> str:
        port = free_port()
        self._spawn(
            ["-m", "gateway.simulator", "--port", str(port), "--general-limit", str(limit),
             "--general-window", str(window), "--retry-after", retry_after],
            "simulator.log",
        )  # fmt: skip
        wait_port(port, 20)
        return f"http://127.0.0.1:{port}"

    def gateway(self, *, upstream: str, redis_url: str | None, policy: str, name: str) -> str:
        port = free_port()
        args = ["-m", "gateway", "serve", "--port", str(port), "--upstream", upstream,
                "--policy", policy, "--shutdown-timeout", "3"]  # fmt: skip
        if redis_url:
            args += ["--redis-url", redis_url]
        self._spawn(args, f"{name}.log")
        wait_port(port, 20)
        return f"http://127.0.0.1:{port}"

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def sim_requests(session: aiohttp.ClientSession, sim_url: str) -> list[dict[str, Any]]:
    """What the simulator saw (its ``/__sim__/log``), rate-limited API requests only."""
    async with session.get(f"{sim_url}/__sim__/log") as resp:
        rows: list[dict[str, Any]] = (await resp.json())["requests"]
    return [r for r in rows if r["account_id"] and r["path"].startswith(("/v2/", "/api/v2/"))]


def max_in_any_window(rows: list[dict[str, Any]], window: float, account: str) -> int:
    stamps = [r["t"] for r in rows if r["account_id"] == account and r["status"] != 429]
    return max_in_window(stamps, window)
