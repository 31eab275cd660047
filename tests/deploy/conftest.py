"""Deploy-check fixtures: a Harvest-like upstream and a gateway's /metrics after traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.settings import Settings
from tests.conftest import GatewayFactory
from tests.deploy.traffic import drive, harvest_like_app

# Quotas far above the traffic: these tests watch metrics, not pacing.
LOOSE_QUOTAS = ("general=100000/1s", "reports=100000/1s")


@pytest.fixture
async def harvest_upstream() -> AsyncIterator[str]:
    server = TestServer(harvest_like_app(), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def gateway_settings(upstream: str, **changes: Any) -> Settings:
    return Settings(upstream=upstream, id_upstream=upstream, quota=LOOSE_QUOTAS, **changes)


@pytest.fixture
async def live_metrics(harvest_upstream: str, start_gateway: GatewayFactory) -> str:
    """The text of a gateway's ``/metrics`` after one round of varied traffic."""
    url, _ = await start_gateway(gateway_settings(harvest_upstream))
    async with aiohttp.ClientSession() as session:
        statuses = await drive(session, [url])
        # The 429 reaches the caller only while no admission stage absorbs it.
        assert {200, 201, 400, 500, 502} <= set(statuses), statuses
        async with session.get(url + "/metrics") as resp:
            assert resp.status == 200
            return await resp.text()
