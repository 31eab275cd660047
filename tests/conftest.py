"""Fixtures every suite may use. Integration fixtures run real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from io import StringIO
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.settings import Settings
from gateway.web.app import create_app
from tests.support import GatewayTestServer, RedisServer, free_port, redis_server


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisServer]:
    """A real Redis server for the session. Its absence is a failure, never a skip."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_service: RedisServer) -> str:
    return redis_service.url


GatewayFactory = Callable[..., Awaitable[tuple[str, web.Application]]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[GatewayFactory]:
    """Start gateways on free loopback ports: ``url, app = await start_gateway(settings, ...)``."""
    servers: list[TestServer] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> tuple[str, web.Application]:
        settings = settings or Settings()
        log_stream = kwargs.pop("log_stream", None) or StringIO()
        port = free_port()
        settings = replace(settings, host="127.0.0.1", port=port)
        app = create_app(settings, log_stream=log_stream, **kwargs)
        server = GatewayTestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{port}", app

    yield start
    for server in servers:
        await server.close()


SimFactory = Callable[..., Awaitable[tuple[str, Any]]]


@pytest.fixture
async def start_simulator() -> AsyncIterator[SimFactory]:
    """Start Harvest simulators on loopback: ``origin, sim = await start_simulator(config)``."""
    from gateway.simulator import SimConfig, Simulator

    servers: list[TestServer] = []

    async def start(config: SimConfig | None = None, **kwargs: Any) -> tuple[str, Simulator]:
        sim = Simulator(config or SimConfig(), **kwargs)
        server = TestServer(sim.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}", sim

    yield start
    for server in servers:
        await server.close()
