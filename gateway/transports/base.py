"""The terminal step of the pipeline: where a reply comes from."""

from __future__ import annotations

from typing import Protocol

from gateway.model import Exchange, Reply


class Transport(Protocol):
    async def handle(self, exchange: Exchange) -> Reply: ...

    async def aclose(self) -> None: ...
