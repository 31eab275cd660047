"""The request and response as the pipeline sees them; no aiohttp server or client types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.core.routes import Route


@dataclass(slots=True, kw_only=True)
class Exchange:
    """One caller request, validated and normalised, on its way upstream."""

    method: str
    route: Route
    raw_query: str  # byte-exact, as the caller sent it (percent-encoding kept)
    body: bytes
    account_id: str | None
    principal: str | None  # digest of the credential, never the token
    request_id: str
    received: float  # monotonic time the gateway got it
    # As received; stages read Cache-Control and X-Gateway-* from it.
    caller_headers: CIMultiDictProxy[str] | CIMultiDict[str]
    # The origin this caller reached the gateway by (``--public-url``, else its own Host):
    # upstream URLs in links and Location are rewritten to it.
    public_origin: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # stage annotations for logs/headers
    # What goes upstream (hop-by-hop stripped, injections applied), built on first use: a cache
    # hit never needs it.
    upstream_headers: CIMultiDict[str] | None = None
    header_factory: Callable[[], CIMultiDict[str]] | None = None

    @property
    def headers(self) -> CIMultiDict[str]:
        if self.upstream_headers is None:
            factory = self.header_factory
            self.upstream_headers = factory() if factory is not None else CIMultiDict()
        return self.upstream_headers

    @property
    def target(self) -> str:
        return self.route.path + ("?" + self.raw_query if self.raw_query else "")


@dataclass(slots=True, kw_only=True)
class Reply:
    """A response: either a whole ``body`` or a ``stream`` of chunks (never both)."""

    status: int
    reason: str = ""
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    release: Callable[[], None] | None = None  # frees the upstream connection of a stream

    async def read(self) -> bytes:
        """Buffer a streamed reply (for stages that must see the whole body)."""
        if self.body is None:
            chunks = []
            if self.stream is not None:
                async for chunk in self.stream:
                    chunks.append(chunk)
            self.body = b"".join(chunks)
            self.stream = None
            if self.release is not None:
                self.release()
                self.release = None
        return self.body


CallNext = Callable[[Exchange], Awaitable[Reply]]
Stage = Callable[[Exchange, CallNext], Awaitable[Reply]]


def compose(stages: list[Stage], terminal: CallNext) -> CallNext:
    """Wrap ``terminal`` in ``stages``, first stage outermost."""
    handler = terminal
    for stage in reversed(stages):
        handler = _bind(stage, handler)
    return handler


def _bind(stage: Stage, call_next: CallNext) -> CallNext:
    # A plain function handing back the stage's coroutine: no extra frame to await per stage.
    def run(exchange: Exchange) -> Awaitable[Reply]:
        return stage(exchange, call_next)

    return run
