"""A simulator, a canary and the gateway in front of them, on a background event loop.

Fuzzers (schemathesis, hypothesis) drive synchronous clients; the servers run in their own
thread so a blocking request never stalls them.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

from aiohttp import web

from gateway.settings import Settings
from gateway.simulator import SimConfig, Simulator
from gateway.web.app import create_app
from gateway.web.server import GatewayRunner
from tests.rawhttp import Canary
from tests.support import free_port


@dataclass
class LiveStack:
    sim: Simulator = field(
        default_factory=lambda: Simulator(SimConfig(general_limit=100_000, reports_limit=100_000))
    )
    canary: Canary = field(default_factory=Canary)
    url: str = ""
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)

    def start(self) -> LiveStack:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._start())
        return self

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(30)

    async def _start(self) -> None:
        await self.canary.start()
        sim_runner = web.AppRunner(self.sim.app())
        await sim_runner.setup()
        sim_site = web.TCPSite(sim_runner, "127.0.0.1", 0)
        await sim_site.start()
        self._runners.append(sim_runner)
        sim_port = sim_runner.addresses[0][1]
        origin = f"http://127.0.0.1:{sim_port}"
        self.port = free_port()
        # The simulator's raised limits, the gateway's too: the fuzzers send a few hundred
        # requests in seconds, and Harvest's 100 per 15 s would queue them past their timeout.
        settings = Settings(host="127.0.0.1", port=self.port, upstream=origin, id_upstream=origin,
                            public_url=f"http://127.0.0.1:{self.port}",
                            admin_token="fuzz-admin-token",
                            quota=("general=100000/15s", "reports=100000/15m"))  # fmt: skip
        runner = GatewayRunner(create_app(settings, log_stream=StringIO()), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._runners.append(runner)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        await self.canary.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
