"""The gateway's own endpoints answer like its proxied requests: X-Request-Id echoed, JSON errors,
and a wrong method is a 405 from the gateway, never a request forwarded upstream."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.settings import Mode, Settings
from tests.conftest import GatewayFactory
from tests.integration.echo_upstream import Echo


def own_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves itself, read from its router: an endpoint
    added later is covered without editing this test."""
    found = []
    for resource in app.router.resources():
        path = resource.canonical
        if path == "/{tail}":  # the proxy's catch-all
            continue
        path = path.replace("{tail}", "anything")
        found += [(route.method, path) for route in resource if route.method != "*"]
    return found


@pytest.mark.parametrize("mode", [Mode.PROXY, Mode.REPLAY])
async def test_every_own_endpoint_echoes_the_request_id(
    start_gateway: GatewayFactory, echo: Echo, tmp_path, mode: Mode
) -> None:
    url, app = await start_gateway(
        Settings(upstream=echo.origin, mode=mode, cassette_dir=str(tmp_path))
    )
    routes = own_routes(app)
    paths = {path for _, path in routes}
    assert {"/healthz", "/readyz", "/metrics", "/_gateway/quota", "/_gateway/cache"} <= paths
    async with aiohttp.ClientSession(url) as http:
        for n, (method, path) in enumerate(routes):
            async with http.request(method, path, headers={"X-Request-Id": f"own-{n}"}) as resp:
                assert resp.headers.get("X-Request-Id") == f"own-{n}", (method, path)
            async with http.request(method, path) as resp:
                assert len(resp.headers.get("X-Request-Id", "")) == 32, (method, path)
    assert echo.seen == []


async def test_a_wrong_method_is_refused_with_allow(
    start_gateway: GatewayFactory, echo: Echo
) -> None:
    url, _ = await start_gateway(Settings(upstream=echo.origin))
    async with aiohttp.ClientSession(url) as http:
        for method, path, allow in [
            ("POST", "/healthz", "GET, HEAD"),
            ("DELETE", "/metrics", "GET, HEAD"),
            ("PUT", "/_gateway/cache", "DELETE, GET, HEAD, POST"),
            ("GET", "/_gateway/cassettes/rewind", "POST"),
        ]:
            async with http.request(method, path, headers={"X-Request-Id": "r-1"}) as resp:
                assert resp.status == 405, (method, path)
                assert resp.headers["Allow"] == allow
                assert resp.headers["X-Request-Id"] == "r-1"
                body = await resp.json()
            assert body["error"] == "method_not_allowed"
            assert method in body["error_description"]
            assert path in body["error_description"]
        async with http.get("/_gateway/nothing-here") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "not_found"
    assert echo.seen == []


async def test_an_error_aiohttp_raises_in_an_own_endpoint_carries_the_request_id(
    start_gateway: GatewayFactory, echo: Echo
) -> None:
    url, _ = await start_gateway(
        Settings(upstream=echo.origin, max_body=1024, admin_token="admin-secret-1")
    )
    async with (
        aiohttp.ClientSession(url) as http,
        http.post(
            "/_gateway/cache",
            data=b'{"account": "' + b"1" * 4096 + b'"}',
            headers={"Authorization": "Bearer admin-secret-1", "X-Request-Id": "big-1",
                     "Content-Type": "application/json"},
        ) as resp,
    ):  # fmt: skip
        assert resp.status == 413
        assert resp.headers["X-Request-Id"] == "big-1"
        assert (await resp.json())["error"] == "request_entity_too_large"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_a_wrong_admin_token_is_a_401_whatever_its_characters(
    start_gateway: GatewayFactory, echo: Echo, tmp_path, method: str
) -> None:
    # hmac.compare_digest raises on non-ASCII text: compared as text, "ü" was a 500.
    url, _ = await start_gateway(
        Settings(upstream=echo.origin, admin_token="admin-secret-1", cassette_dir=str(tmp_path))
    )
    path = "/_gateway/cassettes/rewind" if method == "POST" else "/_gateway/cache"
    async with aiohttp.ClientSession(url) as http:
        for given in ("Bearer ü", "Bearer admin-secret-", "bearer  admin-secret-2", "Basic eDp5"):
            async with http.request(method, path, headers={"Authorization": given}) as resp:
                assert resp.status == 401, given
                assert (await resp.json())["error"] == "invalid_admin_token"
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        ok = {"Authorization": "Bearer admin-secret-1"}
        async with http.request(method, path, headers=ok) as resp:
            assert resp.status == 200
