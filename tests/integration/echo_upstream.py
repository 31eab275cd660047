"""A tiny real upstream for forwarding tests: it echoes what it received, and misbehaves on cue."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Echo:
    origin: str = "http://127.0.0.1"  # set once the server's port is known
    seen: list[dict[str, object]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v2/gzip", self.gzip)
        app.router.add_route("*", "/v2/stream", self.stream)
        app.router.add_route("*", "/v2/slow", self.slow)
        app.router.add_route("*", "/v2/stall-json", self.stall_json)
        app.router.add_route("*", "/v2/stall-stream", self.stall_stream)
        app.router.add_route("*", "/v2/trickle", self.trickle)
        app.router.add_route("*", "/v2/reset", self.reset)
        app.router.add_route("*", "/v2/hop", self.hop)
        app.router.add_route("*", "/v2/links", self.links)
        app.router.add_route("*", "/v2/created", self.created)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def _record(self, request: web.Request) -> dict[str, object]:
        body = await request.read()
        entry: dict[str, object] = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_b64": base64.b64encode(body).decode(),
        }
        self.seen.append(entry)
        return entry

    async def echo(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        if request.method == "HEAD":
            return web.Response(headers={"X-Echo": "head"})
        return web.json_response(entry, headers={"X-Request-Id": "upstream-id"})

    async def gzip(self, request: web.Request) -> web.Response:
        await self._record(request)
        payload = json.dumps({"users": [{"id": i, "name": f"user {i}"} for i in range(200)]})
        return web.Response(
            body=gzip.compress(payload.encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        await resp.write(b"first-chunk;")
        await asyncio.wait_for(self.release.wait(), 10)
        for _ in range(64):
            await resp.write(b"x" * 65536)
        await resp.write_eof()
        return resp

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(5)
        return web.json_response({})

    async def stall_json(self, request: web.Request) -> web.StreamResponse:
        """A JSON head and half a body, then silence."""
        return await self._stall(request, "application/json", b'{"users": [')

    async def stall_stream(self, request: web.Request) -> web.StreamResponse:
        """A streamed (non-JSON) body that stops after its first chunk."""
        return await self._stall(request, "application/pdf", b"%PDF-1.7 first chunk")

    async def _stall(
        self, request: web.Request, content_type: str, first: bytes
    ) -> web.StreamResponse:
        await self._record(request)
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        await resp.prepare(request)
        await resp.write(first)
        await asyncio.sleep(5)
        return resp

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        """A streamed body that never pauses long, and never ends soon."""
        await self._record(request)
        resp = web.StreamResponse(headers={"Content-Type": "text/csv"})
        await resp.prepare(request)
        for n in range(100):
            await resp.write(f"{n}\n".encode())
            await asyncio.sleep(0.05)
        await resp.write_eof()
        return resp

    async def reset(self, request: web.Request) -> web.Response:
        await self._record(request)
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0.1)
        return web.json_response({})

    async def hop(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        return web.json_response(
            entry,
            headers={"Connection": "X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5"},
        )

    async def links(self, request: web.Request) -> web.Response:
        await self._record(request)
        base = f"{self.origin}/v2/links"
        body = {
            "items": [1, 2],
            "page": 1,
            "links": {
                "first": f"{base}?page=1&per_page=2&ref=first",
                "next": f"{base}?page=2&per_page=2&ref=next",
                "previous": None,
                "last": f"{base}?page=3&per_page=2&ref=last",
            },
        }
        return web.json_response(body)

    async def created(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response(
            {"id": 7}, status=201, headers={"Location": f"{self.origin}/api/v2/created/7"}
        )
