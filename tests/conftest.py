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
from gateway.web import keys
from gateway.web.app import create_app
from tests.secret_scan import SecretRegistry, simulator_tokens, verdict
from tests.support import GatewayTestServer, RedisServer, free_port, project_root, redis_server

SECRETS = pytest.StashKey[SecretRegistry]()
SECRET_VERDICT = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    registry = SecretRegistry()
    registry.add_tokens(simulator_tokens())
    config.stash[SECRETS] = registry


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any token a test used shows up in a log, `/metrics` or a cassette."""
    registry = session.config.stash.get(SECRETS, None)
    if registry is None or not registry.gateways:
        return
    report = registry.scan(extra_dirs=[project_root() / "cassettes"])
    reason = verdict(report, registry)
    session.config.stash[SECRET_VERDICT] = reason or report.summary()
    if reason is not None:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    line = config.stash.get(SECRET_VERDICT, None)
    if line is not None:
        terminalreporter.write_line(line, red="LEAK" in line or "nothing" in line)


@pytest.fixture(scope="session")
def secrets(pytestconfig: pytest.Config) -> SecretRegistry:
    """The session's registry of tokens used and texts to scan for them (see secret_scan)."""
    return pytestconfig.stash[SECRETS]


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
async def start_gateway(secrets: SecretRegistry) -> AsyncIterator[GatewayFactory]:
    """Start gateways on free loopback ports: ``url, app = await start_gateway(settings, ...)``.

    Each is watched by the session's secret scan: its callers' credentials, its log, its
    `/metrics` and its cassette dir.
    """
    servers: list[TestServer] = []
    apps: list[tuple[str, web.Application]] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> tuple[str, web.Application]:
        settings = settings or Settings()
        log_stream = kwargs.pop("log_stream", None) or StringIO()
        port = free_port()
        settings = replace(settings, host="127.0.0.1", port=port)
        app = create_app(settings, log_stream=log_stream, **kwargs)
        url = f"http://127.0.0.1:{port}"
        secrets.gateways += 1
        if hasattr(log_stream, "getvalue"):
            secrets.add_text("logs", f"log of gateway {url}", log_stream.getvalue)
        secrets.add_cassette_dir(settings.cassette_dir)
        server = GatewayTestServer(app, host="127.0.0.1", port=port, observe=secrets.observe)
        await server.start_server()
        servers.append(server)
        apps.append((url, app))
        return url, app

    yield start
    for url, app in apps:
        secrets.add_text(
            "metrics", f"/metrics of gateway {url}", app[keys.METRICS].render().decode()
        )
    for server in servers:
        await server.close()


SimFactory = Callable[..., Awaitable[tuple[str, Any]]]


@pytest.fixture
async def start_simulator(secrets: SecretRegistry) -> AsyncIterator[SimFactory]:
    """Start Harvest simulators on loopback: ``origin, sim = await start_simulator(config)``."""
    from gateway.simulator import SimConfig, Simulator

    servers: list[TestServer] = []
    sims: list[Simulator] = []

    async def start(config: SimConfig | None = None, **kwargs: Any) -> tuple[str, Simulator]:
        sim = Simulator(config or SimConfig(), **kwargs)
        server = TestServer(sim.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        sims.append(sim)
        return f"http://127.0.0.1:{server.port}", sim

    yield start
    for sim in sims:  # what reached Harvest: the tokens the gateway forwarded
        secrets.add_tokens(entry.token for entry in sim.log)
    for server in servers:
        await server.close()
