"""Serving the app: connection limits, JSON answers for what aiohttp refuses itself, and
proxied requests handed to the proxy without a trip through the router.

aiohttp answers malformed HTTP (and oversized header lines, handler crashes, and the HTTP
errors it raises itself) in plain text. ``GatewayRunner`` serves the app with a request handler
whose ``handle_error`` and ``finish_response`` speak the gateway's JSON error shape instead.
Both ``serve`` and the test fixture use it, so what tests see is what production sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final, cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.settings import Settings
from gateway.web import keys
from gateway.web.respond import JSON_TYPE, json_response

_PRINTABLE = frozenset(range(0x20, 0x7F))


def handler_args(settings: Settings) -> Mapping[str, Any]:
    """aiohttp ``RequestHandler`` limits, set on the Application so every runner applies them."""
    return {
        "max_line_size": settings.max_header_size,
        "max_field_size": settings.max_header_size,
        "max_headers": settings.max_headers,
        # Also the deadline for a new connection (or the next request on a kept-alive one)
        # to deliver its request line and headers: aiohttp closes it when this runs out.
        "keepalive_timeout": settings.keepalive_timeout,
        # How long an unread request body is drained after we answered early (e.g. 413).
        "lingering_time": min(settings.client_timeout, 5.0),
    }


def error_body(status: int, exc: BaseException | None, max_header: int) -> tuple[int, str, str]:
    """(status, code, description) for a request aiohttp refused or a handler that crashed."""
    if isinstance(exc, LineTooLong):
        return 431, "header_too_large", (
            f"The request line or a header field is longer than {max_header} bytes."
        )  # fmt: skip
    if isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc.message):
        return 431, "too_many_headers", "The request has too many header fields."
    if isinstance(exc, HttpProcessingError) or status == 400:
        detail = _printable(str(getattr(exc, "message", "") or "")).strip()
        return (
            400,
            "bad_request",
            f"The request is not valid HTTP/1.1{': ' if detail else ''}{detail}",
        )
    if status == 504:
        return 504, "gateway_timeout", "The gateway did not finish the request in time."
    return 500, "internal_error", "The gateway failed to handle the request; see its log."


def _printable(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return "".join(c for c in first[:100] if ord(c) in _PRINTABLE)


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with the gateway's JSON error bodies."""

    __slots__ = ("max_responses", "responses")

    def __init__(self, *args: Any, max_responses: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_responses = max_responses  # then the connection closes; 0: no limit
        self.responses = 0  # answered on this connection

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, checks nothing sent
        status, code, description = error_body(status, exc, self.max_field_size)
        body = json.dumps({"error": code, "error_description": description}).encode()
        resp = web.Response(status=status, body=body, headers={"Content-Type": JSON_TYPE})
        resp.force_close()
        del plain
        return resp

    def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        # An HTTPException raised anywhere (the router's, aiohttp's body limit) arrives here as
        # the response: answer it as JSON. Cheaper than a middleware, which every request pays.
        # The status first: HTTPException's isinstance goes through ABCMeta, a cost per answer.
        if resp.status >= 400 and isinstance(resp, web.HTTPException):
            resp = http_error_json(resp)
        if self.max_responses:
            self.responses += 1
            if self.responses >= self.max_responses:
                resp.force_close()
                if not resp.prepared:  # a stream's head is already out: it just closes
                    resp.headers["Connection"] = "close"
        # aiohttp's own coroutine, handed back rather than awaited here: no frame per request.
        return super().finish_response(request, resp, start_time)


RequestHandlerFn = Callable[[BaseRequest], Awaitable[web.StreamResponse]]

# Targets that only the proxy answers: the gateway's own endpoints (/healthz, /readyz,
# /metrics, /_gateway/...) lie outside them.
PROXIED_PREFIXES: Final = ("/v2/", "/api/v2/", "/id/")


def straight_to_proxy(request: BaseRequest) -> bool:
    """Whether the router could only pick the catch-all proxy route for ``request``: its path
    (as the router reads it) is under ``PROXIED_PREFIXES``, and it has no ``Expect`` header
    (the route's expect handler answers 100-continue)."""
    return request.rel_url.raw_path.startswith(PROXIED_PREFIXES) and (
        hdrs.EXPECT not in request.headers
    )


def dispatch(app: web.Application, app_handler: RequestHandlerFn) -> RequestHandlerFn:
    """The connections' request handler: a proxied request goes to the proxy itself, anything
    else through the Application (its router, middlewares and signals).

    The router resolves each request afresh (a URL match, a match-info object and its app
    stack, the response-prepare signal): about 33 k instructions a request, an eighth of a
    cache hit's, to arrive where these targets always arrive. An app given middlewares keeps
    them on every request: then nothing goes around the router.
    """
    proxy = app.get(keys.PROXY)
    if proxy is None or app.middlewares:
        return app_handler

    def handle(request: BaseRequest) -> Awaitable[web.StreamResponse]:
        # The awaitable itself, not awaited here: no extra frame on the proxy's awaits.
        if straight_to_proxy(request):
            return cast(Awaitable[web.StreamResponse], proxy(cast(web.Request, request)))
        return app_handler(request)

    return handle


class GatewayServer(web.Server):
    max_responses = 0  # per kept-alive connection (``--keepalive-requests``)

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(
            self, loop=self._loop, max_responses=self.max_responses, **self._kwargs
        )


class GatewayRunner(web.AppRunner):
    """``AppRunner`` whose connections use ``JsonErrorRequestHandler`` and ``dispatch``."""

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        # Same factory and keyword arguments as aiohttp's own server; the protocol class and
        # the handler in front of the Application's differ (aiohttp has no public hook for
        # either). The factory still makes ``web.Request``s, as the Application's routes need.
        server = GatewayServer(
            dispatch(self.app, base.request_handler),
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        settings = self.app.get(keys.SETTINGS)
        if settings is not None:
            server.max_responses = settings.keepalive_requests
        return server


def http_error_json(exc: web.HTTPException) -> web.Response:
    """aiohttp's own HTTP error (the router's 404, a body over the size limit) as JSON."""
    code = exc.reason.lower().replace(" ", "_") or "error"
    body = {"error": code, "error_description": f"{exc.status} {exc.reason}."}
    kept = {
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    }
    return json_response(exc.status, body, kept)


class ListenError(Exception):
    """The listening socket cannot be opened: said in one line, not a traceback."""


async def serve(
    app: web.Application, settings: Settings, *, ready: asyncio.Event | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    runner = GatewayRunner(
        app, access_log=None, shutdown_timeout=settings.shutdown_timeout, handler_cancellation=True
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # reuse_port: several workers (--workers) may listen on one port.
        reuse = settings.workers > 1 or None
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse)
        try:
            await site.start()
        except OSError as exc:  # port taken, address not on this host, a port below 1024
            # asyncio's message repeats the address; the errno's own text does not.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(
                f"cannot listen on {settings.host}:{settings.port}: {reason} (--host, --port)"
            ) from exc
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
