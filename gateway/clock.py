"""The one place the gateway reads time: a protocol, the system clock and a fake for tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


def millis(seconds: float) -> float:
    """A duration in milliseconds to two decimals (half up): ``round(x * 1000, 2)`` at a
    quarter of its cost, which matters twice per request."""
    return int(seconds * 100_000 + 0.5) / 100


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    # The functions themselves, not methods wrapping them: read several times per request.
    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to; sleepers wake when it passes their deadline."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return 1_700_000_000.0 + self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, fut))
        await fut

    def advance(self, seconds: float) -> None:
        self._now += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self._now]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._now]
        for _, fut in sorted(due, key=lambda pair: pair[0]):
            if not fut.done():
                fut.set_result(None)
