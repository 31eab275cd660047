"""Forward an exchange to Harvest (or Harvest ID) over one pooled aiohttp session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from gateway.core.headers import named_by_connection
from gateway.core.links import Move, move_url, public_moves, rewrite_links
from gateway.core.routes import Upstream
from gateway.errors import upstream_timeout, upstream_unavailable
from gateway.model import Exchange, Reply

# The body is decoded by aiohttp, so its framing headers no longer describe what we send.
_DROP_FROM_UPSTREAM = frozenset({"content-encoding", "content-length"})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamConfig:
    api: str  # origin, no trailing slash
    id: str
    public: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_connections: int = 100
    max_buffered_json: int = 32 * 1024 * 1024


class UpstreamTransport:
    """Owns the process's one ``ClientSession``; created and closed by the app's lifecycle."""

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._moves: dict[str, tuple[Move, ...]] = {}  # by public origin (one, or a few Hosts)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.config.max_connections,
            limit_per_host=self.config.max_connections,
            keepalive_timeout=30.0,
        )
        # Only the connect timeout is aiohttp's. Its read timeout arms a timer at the send and
        # again at every chunk received, and its total timeout one more: in asyncio each costs
        # about as much as the rest of a proxied request's own work. The read and total bounds
        # are kept by ``handle`` instead, with one timer for a buffered answer.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout)
        # No skip_auto_headers: a caller's User-Agent is always there (the policy requires or
        # injects one), and aiohttp's default Accept-Encoding is wanted (see web/inbound.py).
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, exchange: Exchange) -> URL:
        base = self.config.api if exchange.route.upstream is Upstream.API else self.config.id
        return URL(base + exchange.target, encoded=True)

    async def handle(self, exchange: Exchange) -> Reply:
        """Send ``exchange`` and answer its reply: within the read timeout (capped by the total)
        when the body is buffered; a streamed body then gets the read timeout between chunks and
        the rest of the total for all of them."""
        session, config = self._session, self.config
        if session is None:
            raise upstream_unavailable("the gateway is not started or is shutting down")
        url = self.url_for(exchange)
        now = asyncio.get_running_loop().time()
        deadline = now + config.total_timeout
        try:
            # asyncio.Timeout itself: asyncio.timeout() would look the loop up once more.
            async with asyncio.Timeout(now + min(config.read_timeout, config.total_timeout)):
                resp = await session.request(
                    exchange.method,
                    url,
                    headers=exchange.headers,
                    data=exchange.body or None,
                    allow_redirects=False,
                )
                try:
                    return await self._reply(resp, exchange.public_origin or config.public,
                                             deadline)  # fmt: skip
                except BaseException:
                    resp.release()
                    raise
        except TimeoutError as exc:
            raise upstream_timeout(f"{url.host} did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise upstream_unavailable(f"cannot connect to {url.host}:{url.port}") from exc
        except aiohttp.ClientError as exc:
            raise upstream_unavailable(f"{url.host} failed: {type(exc).__name__}") from exc

    async def _reply(self, resp: aiohttp.ClientResponse, public: str, deadline: float) -> Reply:
        given = resp.headers
        headers: CIMultiDict[str] = CIMultiDict(given)  # copied in C, then trimmed
        for name in named_by_connection(tuple(given.getall("Connection", ())), _DROP_FROM_UPSTREAM):
            headers.popall(name, None)
        if "Location" in headers:
            headers["Location"] = move_url(headers["Location"], self._moves_to(public))
        reply = Reply(status=resp.status, reason=resp.reason or "", headers=headers)
        length = resp.content_length
        json_like = "json" in resp.headers.get("Content-Type", "").lower()
        if json_like and (length is None or length <= self.config.max_buffered_json):
            # Read under handle's deadline, here rather than in a coroutine of its own: one
            # frame fewer for the read's awaits to pass through.
            try:
                body = await resp.read()
            except aiohttp.ClientError as exc:
                raise upstream_unavailable(
                    f"the upstream response was cut short ({type(exc).__name__})"
                ) from exc
            finally:
                resp.release()
            reply.body = rewrite_links(body, self._moves_to(public))
            return reply
        if resp.method == "HEAD" or resp.status in (204, 304):
            reply.body = b""
            resp.release()
            return reply
        reply.stream = _iterate(resp, self.config.read_timeout, deadline)
        reply.release = resp.release
        return reply

    def _moves_to(self, public: str) -> tuple[Move, ...]:
        moves = self._moves.get(public)
        if moves is None:
            if len(self._moves) >= 64:  # Hosts are the callers' to choose: stay bounded
                self._moves.clear()
            moves = self._moves[public] = public_moves(self.config.api, self.config.id, public)
        return moves


async def _iterate(
    resp: aiohttp.ClientResponse, read_timeout: float, deadline: float
) -> AsyncIterator[bytes]:
    """The body in chunks as they come: none may take longer than ``read_timeout``, nor the
    whole past ``deadline`` (loop time). A timeout cuts the stream (its head is already out)."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            async with asyncio.timeout(min(read_timeout, deadline - loop.time())):
                chunk = await resp.content.read(_CHUNK)
            if not chunk:
                return
            yield chunk
    except (TimeoutError, aiohttp.ClientError, asyncio.CancelledError):
        resp.close()
        raise
    finally:
        resp.release()
