"""Limits, each answered with a JSON error (or, where no answer can be sent, a closed socket)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from gateway.settings import Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1
from tests.integration.echo_upstream import Echo
from tests.rawhttp import parse_response, read_one, request_bytes, send_raw
from tests.support import GatewayTestServer

AUTH = {
    "Host": "gateway.internal",
    "Authorization": f"Bearer {ADMIN_TOKEN_1}",
    "Harvest-Account-Id": ACCOUNT_ID_1,
    "User-Agent": "Limits (qa@example.com)",
}
CLOSE = {**AUTH, "Connection": "close"}


@pytest.fixture
async def gateway(start_simulator, start_gateway):
    """``await gateway(**settings)`` → (gateway port, simulator)."""

    async def start(**limits):
        origin, sim = await start_simulator(SimConfig())
        url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin, **limits))
        return int(url.rsplit(":", 1)[1]), sim

    return start


def assert_json_error(resp, status: int, error: str) -> None:
    assert resp.status == status, resp.body[:300]
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == error
    assert body["error_description"]


async def test_oversized_header_field_is_a_json_431(gateway):
    port, sim = await gateway(max_header_size=1024)
    resp = await send_raw(port, request_bytes("/v2/users/me", {**CLOSE, "X-Big": "a" * 2000}))
    assert_json_error(resp, 431, "header_too_large")
    assert "1024" in resp.json()["error_description"]
    ok = await send_raw(port, request_bytes("/v2/users/me", {**CLOSE, "X-Big": "a" * 900}))
    assert ok.status == 200
    assert len(sim.log) == 1


async def test_oversized_request_line_is_a_json_431(gateway):
    port, sim = await gateway(max_header_size=1024)
    resp = await send_raw(port, request_bytes("/v2/users/me?q=" + "x" * 2000, CLOSE))
    assert_json_error(resp, 431, "header_too_large")
    assert sim.log == []


async def test_too_many_headers_is_a_json_431(gateway):
    port, sim = await gateway(max_headers=20)
    many = {f"X-H{i}": "1" for i in range(30)}
    resp = await send_raw(port, request_bytes("/v2/users/me", {**CLOSE, **many}))
    assert_json_error(resp, 431, "too_many_headers")
    assert sim.log == []


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /v2/users/me HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET /v2/users/me HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"GET /v2/users/me HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"GET /v2/users/me HTTP/9.9\r\nHost: a\r\n\r\n",
    ],
    ids=["duplicate-host", "asterisk", "tls-hello", "cl-and-te", "space-in-name", "version"],
)
async def test_malformed_http_is_a_json_400(gateway, raw):
    port, sim = await gateway()
    resp = await send_raw(port, raw)
    assert_json_error(resp, 400, "bad_request")
    assert sim.log == []


async def test_body_over_max_body_is_a_json_413_and_never_sent(gateway):
    port, sim = await gateway(max_body=1000)
    headers = {**CLOSE, "Content-Type": "application/json"}
    body = b'{"notes": "' + b"x" * 2000 + b'"}'
    resp = await send_raw(port, request_bytes("/v2/time_entries", headers, "POST", body))
    assert_json_error(resp, 413, "body_too_large")
    assert sim.log == []


async def test_chunked_body_over_max_body_is_a_json_413(gateway):
    port, sim = await gateway(max_body=1000)
    head = request_bytes("/v2/time_entries", {**CLOSE, "Transfer-Encoding": "chunked"}, "POST")
    chunk = b"x" * 600
    data = head + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3 + b"0\r\n\r\n"
    resp = await send_raw(port, data)
    assert_json_error(resp, 413, "body_too_large")
    assert sim.log == []


async def test_a_body_that_trickles_is_a_json_408_within_the_client_timeout(gateway):
    port, sim = await gateway(client_timeout=0.3)
    head = request_bytes("/v2/time_entries", {**CLOSE, "Content-Length": "100"}, "POST")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(head + b"0123456789")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert time.monotonic() - started < 2.0
    assert_json_error(parse_response(data), 408, "request_timeout")
    assert sim.log == []


async def test_headers_that_never_finish_are_cut_off_by_the_keepalive_timeout(gateway):
    port, sim = await gateway(keepalive_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET /v2/users/me HTTP/1.1\r\nHost: a\r\nX-Slow: ")
    await writer.drain()
    for _ in range(20):  # slowloris: a byte now and then, never the end of the headers
        await asyncio.sleep(0.05)
        if reader.at_eof():
            break
        writer.write(b"a")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert data == b""
    assert time.monotonic() - started < 2.0
    assert sim.log == []


async def test_connection_closes_after_keepalive_requests(gateway):
    port, sim = await gateway(keepalive_requests=3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses, connection = [], []
    for _ in range(3):
        # no-store: every request goes upstream, so the simulator can count them
        writer.write(request_bytes("/v2/users/me", {**AUTH, "Cache-Control": "no-store"}))
        await writer.drain()
        resp = await read_one(reader)
        statuses.append(resp.status)
        connection.append(resp.headers.get("connection", "").lower())
    assert statuses == [200, 200, 200]
    assert connection[:2] == ["", ""]
    assert connection[2] == "close"
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert len(sim.log) == 3


async def test_busy_upstream_connections_give_a_json_503_then_recover(gateway):
    port, sim = await gateway(upstream_connections=1, upstream_wait=0.2)
    sim.faults.add("delay:1.0", path_prefix="/v2/users/me")
    slow = asyncio.create_task(send_raw(port, request_bytes("/v2/users/me", CLOSE)))
    await asyncio.sleep(0.2)
    busy = await send_raw(port, request_bytes("/v2/company", CLOSE))
    assert_json_error(busy, 503, "upstream_busy")
    assert busy.headers["retry-after"] == "1"
    assert (await slow).status == 200
    again = await send_raw(port, request_bytes("/v2/company", CLOSE))
    assert again.status == 200
    assert [e.path for e in sim.log] == ["/v2/users/me", "/v2/company"]


async def test_a_streamed_reply_holds_its_connection_slot_until_released(start_gateway):
    echo = Echo()
    server = GatewayTestServer(echo.app(), host="127.0.0.1")
    await server.start_server()
    echo.origin = f"http://127.0.0.1:{server.port}"
    try:
        url, _ = await start_gateway(
            Settings(upstream=echo.origin, upstream_connections=1, upstream_wait=0.2)
        )
        async with aiohttp.ClientSession(base_url=url) as s:
            async with s.get("/v2/stream", headers=AUTH) as streaming:
                assert streaming.status == 200
                await streaming.content.readexactly(len(b"first-chunk;"))
                async with s.get("/v2/other", headers=AUTH) as busy:
                    assert busy.status == 503
                    assert (await busy.json())["error"] == "upstream_busy"
                echo.release.set()
                await streaming.read()
            async with s.get("/v2/other", headers=AUTH) as after:
                assert after.status == 200
    finally:
        echo.release.set()
        await server.close()


async def test_a_handler_crash_is_a_json_500_without_a_traceback():
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    app = web.Application()
    app.router.add_get("/boom", crash)
    server = GatewayTestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        resp = await send_raw(
            server.port, request_bytes("/boom", {"Host": "x", "Connection": "close"})
        )
    finally:
        await server.close()
    assert_json_error(resp, 500, "internal_error")
    assert b"secret internal detail" not in resp.body
