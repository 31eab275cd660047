"""Proxied requests go to the proxy without the router (``gateway.web.server.dispatch``); what
the router used to decide for them must not change."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
from aiohttp import web

from gateway.settings import Settings
from gateway.web.app import create_app
from gateway.web.server import dispatch
from tests.support import GatewayTestServer, free_port

H = {
    "Authorization": "Bearer secret-token-123",
    "Harvest-Account-Id": "4242",
    "User-Agent": "DispatchTest (qa@example.com)",
}


async def raw_get(port: int, target: str) -> tuple[int, dict[str, str]]:
    """``target`` sent as written (clients normalise dot segments; an attacker does not)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in H.items())
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n{head}Connection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body)


async def test_a_body_sent_after_100_continue_arrives(echo, start_gateway):
    """``Expect: 100-continue`` (curl's habit for large bodies): the gateway answers the
    expectation itself, then forwards the whole body."""
    url, _ = await start_gateway(Settings(upstream=echo.origin))
    payload = b'{"notes": "' + b"x" * 4000 + b'"}'
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v2/expenses",
            data=payload,
            headers={**H, "Content-Type": "application/json"},
            expect100=True,
        ) as resp,
    ):
        assert resp.status == 200
    entry = echo.seen[-1]
    assert base64.b64decode(entry["body_b64"]) == payload
    sent = {k.lower() for k, _ in entry["headers"]}
    assert "expect" not in sent  # met here: upstream gets a complete request


async def test_targets_outside_the_prefixes_still_reach_their_routes(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin))
    port = int(url.rsplit(":", 1)[1])
    status, body = await raw_get(port, "/_gateway/cache")
    assert status == 200
    assert "memory" in body["tiers"]
    status, body = await raw_get(port, "/healthz")
    assert status == 200
    # Under a proxied prefix, a dot segment cannot climb out to the gateway's own endpoints.
    status, body = await raw_get(port, "/v2/../_gateway/cache")
    assert (status, body["error"]) == (404, "not_found")
    assert "dot segment" in body["error_description"]
    status, body = await raw_get(port, "/nothing/here")
    assert (status, body["error"]) == (404, "not_found")
    assert echo.seen == []


async def test_an_app_with_middlewares_keeps_them_on_proxied_requests(echo):
    app = create_app(Settings(upstream=echo.origin))
    seen: list[str] = []

    @web.middleware
    async def note(request: web.Request, handler):  # type: ignore[no-untyped-def]
        seen.append(request.path)
        return await handler(request)

    app.middlewares.append(note)
    port = free_port()
    server = GatewayTestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    url = f"http://127.0.0.1:{port}/v2/users/me"
    try:
        async with aiohttp.ClientSession() as session, session.get(url, headers=H) as resp:
            assert resp.status == 200
    finally:
        await server.close()
    assert seen == ["/v2/users/me"]
    assert echo.seen[-1]["raw_path"] == "/v2/users/me"


async def test_dispatch_goes_around_the_router_only_without_middlewares(echo):
    async def through_router(request):  # type: ignore[no-untyped-def]
        raise AssertionError("not called")

    app = create_app(Settings(upstream=echo.origin))
    assert dispatch(app, through_router) is not through_router
    app.middlewares.append(web.normalize_path_middleware())
    assert dispatch(app, through_router) is through_router


async def expect_continue(port: int, headers: dict[str, str], body: bytes) -> tuple[bytes, bytes]:
    """Send a POST's head with ``Expect: 100-continue`` and wait, as curl does; send the body
    only after a ``100 Continue``. Returns (the first answer's status line, the final body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST /v2/time_entries HTTP/1.1\r\nHost: x\r\n{head}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode()
    )
    first = await asyncio.wait_for(reader.readline(), 5)
    if b" 100 " in first:
        await reader.readline()  # the blank line after the interim answer
        writer.write(body)
        await reader.readline()  # the final status line
    # The final answer, read by its Content-Length: the connection may stay open a while,
    # as aiohttp lingers for a body that was announced but never sent.
    length = 0
    while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    answer = await asyncio.wait_for(reader.readexactly(length), 5)
    writer.close()
    return first.strip(), answer


async def test_expect_continue_is_withheld_from_what_the_headers_refuse(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin, max_body=10_000))
    port = int(url.rsplit(":", 1)[1])
    body = b'{"notes": "' + b"x" * 2000 + b'"}'
    no_agent = {k: v for k, v in H.items() if k != "User-Agent"}
    first, answer = await expect_continue(port, no_agent, body)
    assert first.startswith(b"HTTP/1.1 400")  # no 100 first: the body was never invited
    assert json.loads(answer)["error"] == "missing_user_agent"
    no_token = {k: v for k, v in H.items() if k != "Authorization"}
    first, answer = await expect_continue(port, no_token, body)
    assert (first[9:12], json.loads(answer)["error"]) == (b"401", "invalid_token")
    first, answer = await expect_continue(port, H, b'{"notes": "' + b"x" * 20_000 + b'"}')
    assert (first[9:12], json.loads(answer)["error"]) == (b"413", "body_too_large")
    assert echo.seen == []
    first, answer = await expect_continue(port, H, body)
    assert first == b"HTTP/1.1 100 Continue"
    assert base64.b64decode(echo.seen[-1]["body_b64"]) == body
