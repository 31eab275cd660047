"""pytest plugin: a replaying gateway for app tests that need no network and no Harvest token.

Installed with harvest-gateway (entry point ``pytest11``). In a test::

    @pytest.mark.harvest_cassette("demo/harvest-basics")
    def test_me(harvest_gateway):
        r = requests.get(f"{harvest_gateway}/v2/users/me", headers=...)

``harvest_gateway`` starts a gateway in ``--mode replay`` on a free loopback port over the cassette
dir (ini option ``harvest_cassette_dir``, default ``cassettes`` beside the rootdir) and yields its
base URL. It runs in its own thread and event loop, so sync clients (requests) and async ones
(httpx, aiohttp) can both call it. ``harvest_gateway_factory`` starts gateways with other options.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.settings import Mode, Settings
from gateway.web.app import create_app
from gateway.web.server import GatewayRunner

MARKER = "harvest_cassette"


class ReplayGateway:
    """A gateway in replay mode on 127.0.0.1, served from a background thread."""

    def __init__(
        self,
        cassette_dir: str | Path,
        cassette: str = "default",
        *,
        upstream: str = "https://api.harvestapp.com",
        id_upstream: str = "https://id.getharvest.com",
        repeat_last: bool = False,
        policy: str | None = None,
    ) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings(
            host="127.0.0.1",
            port=self.port,
            mode=Mode.REPLAY,
            upstream=upstream,
            id_upstream=id_upstream,
            cassette_dir=str(cassette_dir),
            cassette=cassette,
            replay_repeat_last=repeat_last,
            policy=policy,
            log_format=Settings().log_format,
        )
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self.url

    async def _start(self) -> None:
        self._runner = GatewayRunner(create_app(self.settings), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
        self._sock.close()

    def __enter__(self) -> ReplayGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "harvest_cassette_dir",
        "cassette directory for the harvest_gateway fixture (relative to the rootdir)",
        default="cassettes",
    )
    parser.addini(
        "harvest_cassette_default", "cassette used when a test has no mark", default="default"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): the cassette the harvest_gateway fixture replays"
    )


def _cassette_dir(config: pytest.Config) -> Path:
    configured = Path(str(config.getini("harvest_cassette_dir")))
    return configured if configured.is_absolute() else Path(config.rootpath) / configured


GatewayFactory = Callable[..., str]


@pytest.fixture
def harvest_gateway_factory(request: pytest.FixtureRequest) -> Iterator[GatewayFactory]:
    """``url = harvest_gateway_factory(cassette="x", repeat_last=True, cassette_dir=...)``."""
    started: list[ReplayGateway] = []

    def start(cassette: str | None = None, **options: Any) -> str:
        marker = request.node.get_closest_marker(MARKER)
        name = cassette or (marker.args[0] if marker and marker.args else None)
        options.setdefault("cassette_dir", _cassette_dir(request.config))
        gateway = ReplayGateway(
            cassette=name or str(request.config.getini("harvest_cassette_default")), **options
        )
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def harvest_gateway(harvest_gateway_factory: GatewayFactory) -> str:
    """Base URL of a replaying gateway over the test's cassette (``harvest_cassette`` mark)."""
    return harvest_gateway_factory()
