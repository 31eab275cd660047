from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.simulator import ADMIN_TOKEN_1, SimConfig, Simulator, headers_for


class FakeClock:
    """A manually advanced clock for exact rate-limit tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    return Simulator(SimConfig(), clock=clock)


@pytest.fixture
async def client(sim: Simulator, aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(sim.app())


@pytest.fixture
def admin1() -> dict[str, str]:
    return headers_for(ADMIN_TOKEN_1, "111111")
