"""Raw HTTP/1.1 over asyncio streams, and a canary listener that records every connection.

Clients like aiohttp normalise what they send; attacks on request parsing need the exact bytes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names, last one wins
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawResponse(status, headers, body)


async def send_raw(port: int, data: bytes, wait: float = 5.0) -> RawResponse:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        received = await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
    return parse_response(received)


async def read_one(reader: asyncio.StreamReader, wait: float = 5.0) -> RawResponse:
    """Read one Content-Length-framed response off a kept-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
    partial = parse_response(head)
    length = int(partial.headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), wait) if length else b""
    return RawResponse(partial.status, partial.headers, body)


def request_bytes(
    target: str, headers: dict[str, str], method: str = "GET", body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Canary:
    """A TCP listener that must never be reached: it records every connection and its bytes."""

    port: int = 0
    seen: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> Canary:
        self.server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.append(b"<connected>")
        try:
            data = await asyncio.wait_for(reader.read(65536), 1.0)
            self.seen.append(data)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanary")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
