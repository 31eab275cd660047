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
