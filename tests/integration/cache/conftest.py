"""Shared set-up for the cache integration suites: a simulator and gateways in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from gateway.simulator import SimConfig, Simulator
from gateway.simulator.data import headers_for


@dataclass
class Upstream:
    sim: Simulator
    url: str

    def gets(self, path_prefix: str) -> int:
        return sum(1 for r in self.sim.log if r.method == "GET" and r.path.startswith(path_prefix))


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    sim = Simulator(SimConfig(general_limit=100_000, reports_limit=100_000))
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    yield Upstream(sim, f"http://127.0.0.1:{server.port}")
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession, base: str, path: str, token: str, account: str, **headers: str
) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.get(base + path, headers={**headers_for(token, account), **headers}) as r:
        return r.status, CIMultiDict(r.headers), await r.read()
