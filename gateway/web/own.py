"""The gateway's own endpoints (``/healthz``, ``/readyz``, ``/metrics``, ``/_gateway/...``),
registered in one place so they answer alike: each returns the caller's ``X-Request-Id`` (or a
fresh one), as proxied requests do, and a method a path does not serve gets a JSON 405 with
``Allow`` rather than falling through to the proxy's "not forwarded" 404.

The wrapping happens at registration, not in a middleware: a middleware would cost every
proxied request a coroutine frame to serve these few.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from gateway.core.headers import bearer_token
from gateway.web.inbound import request_id_of
from gateway.web.respond import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answering_request_id(handler: Handler, fresh: Callable[[], str]) -> Handler:
    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's (a body over the limit): made JSON later
            exc.headers["X-Request-Id"] = request_id_of(request, fresh)
            raise
        response.headers["X-Request-Id"] = request_id_of(request, fresh)
        return response

    return answer


def not_admin(request: web.Request, expected: str) -> web.Response | None:
    """None when ``request`` carries ``Authorization: Bearer <expected>``, else the 401 to send.
    Compared as bytes, in constant time: ``hmac.compare_digest`` refuses non-ASCII text."""
    given = bearer_token(request.headers.get("Authorization")) or ""
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return json_response(
        401, {"error": "invalid_admin_token",
              "error_description": "Send Authorization: Bearer <admin token>."},
        headers={"WWW-Authenticate": 'Bearer realm="harvest-gateway admin"'},
    )  # fmt: skip


def method_not_allowed(path: str, allowed: Iterable[str]) -> Handler:
    methods = ", ".join(sorted(allowed))

    async def refuse(request: web.Request) -> web.StreamResponse:
        return json_response(
            405,
            {"error": "method_not_allowed",
             "error_description": f"{path} answers {methods}, not {request.method}."},
            headers={"Allow": methods},
        )  # fmt: skip

    return refuse


def add_own_routes(
    router: web.UrlDispatcher, routes: Iterable[web.RouteDef], fresh: Callable[[], str]
) -> None:
    """Register ``routes``; each of their paths then refuses its other methods."""
    by_path: dict[str, list[web.RouteDef]] = {}
    for route in routes:
        by_path.setdefault(route.path, []).append(route)
    for path, defs in by_path.items():
        methods = {d.method for d in defs}
        if "GET" in methods:
            methods.add("HEAD")  # aiohttp answers HEAD for every GET route
        for d in defs:
            wrapped = answering_request_id(d.handler, fresh)
            web.RouteDef(d.method, path, wrapped, d.kwargs).register(router)
        router.add_route("*", path, answering_request_id(method_not_allowed(path, methods), fresh))
