"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.integration.echo_upstream import Echo


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    """An upstream on loopback that answers every request with what it received."""
    echo = Echo()
    server = TestServer(echo.app(), host="127.0.0.1")
    await server.start_server()
    echo.origin = f"http://127.0.0.1:{server.port}"
    yield echo
    echo.release.set()
    await server.close()
