"""Turning gateway values into aiohttp responses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.errors import GatewayError
from gateway.model import Reply

JSON_TYPE = "application/json; charset=utf-8"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": JSON_TYPE, **(headers or {})},
    )


def error_response(error: GatewayError) -> web.Response:
    return json_response(error.status, error.body(), error.headers)


def buffered_response(reply: Reply) -> web.Response:
    """A reply whose body is read (``reply.stream`` is None), as one response."""
    return web.Response(
        status=reply.status,
        reason=reply.reason or None,
        headers=reply.headers,
        body=reply.body or b"",
    )


async def stream_reply(
    request: web.Request,
    reply: Reply,
    stream: AsyncIterator[bytes],
    write_timeout: float | None = None,
) -> web.StreamResponse:
    """A reply whose body still streams from upstream (``reply.stream``), sent chunk by chunk
    as it comes."""
    resp = web.StreamResponse(
        status=reply.status, reason=reply.reason or None, headers=reply.headers
    )
    try:
        await resp.prepare(request)
        async for chunk in stream:
            # A caller that stops reading would hold the upstream connection: bound each write.
            async with asyncio.timeout(write_timeout):
                await resp.write(chunk)
        await resp.write_eof()
    finally:
        if reply.release is not None:
            reply.release()
    return resp
