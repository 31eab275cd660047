"""Helpers for the quota tests: a simulator on a real socket, a policy file, traffic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.simulator import SimConfig, Simulator, headers_for

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
