"""Test helpers shared by the suites: free ports, a real Redis server, running a gateway."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_request import BaseRequest
from aiohttp.web_runner import BaseRunner

from gateway.web.server import GatewayRunner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port; can be stopped and restarted."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(
                "redis-server is not installed; Redis tests need it (apt-get install redis-server)"
            )
        self.exe = exe
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="gw-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class GatewayTestServer(TestServer):
    """``TestServer`` with the runner ``serve`` uses (JSON answers to malformed HTTP, proxied
    requests straight to the proxy). ``observe`` sees every request first, the way a
    middleware would, without making the app one that has middlewares."""

    def __init__(
        self, app: web.Application, *, observe: Callable[[BaseRequest], None] | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(app, **kwargs)
        self._observe = observe

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return _ObservedRunner(self.app, self._observe, **kwargs)


class _ObservedRunner(GatewayRunner):
    def __init__(
        self, app: web.Application, observe: Callable[[BaseRequest], None] | None, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._observe = observe

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        observe, inner = self._observe, server.request_handler
        if observe is not None:

            def handle(request: BaseRequest) -> Awaitable[web.StreamResponse]:
                observe(request)
                return inner(request)

            server.request_handler = handle
        return server
