"""What the gateway reads off an incoming request, and what it sends on: the request's id,
its body, its route, the origin its links should name, and the headers forwarded upstream."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Callable
from typing import Final

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.core.headers import Caller, named_by_connection
from gateway.core.routes import Route, RouteError, resolve
from gateway.errors import GatewayError
from gateway.settings import Settings

# Never forwarded upstream: framing is aiohttp's job, X-Gateway-* talk to us, X-Forwarded-* are
# rebuilt, cookies are not Harvest API's business. Nor is the caller's Accept-Encoding: the
# session asks for what it can decode (gzip, deflate; Harvest's JSON lists shrink about tenfold
# on the long hop) and decodes it, so callers always get identity bodies. A caller's "br" or
# "zstd", passed on, would fetch a body the gateway cannot read.
# Expect: aiohttp has answered a 100-continue before the body was read, and upstream gets the
# body whole, at once.
_NOT_FORWARDED = frozenset(
    {"host", "content-length", "cookie", "x-forwarded-for",
     "x-forwarded-proto", "x-forwarded-host", "forwarded", "accept-encoding", "expect"}
)  # fmt: skip
# A caller's id is kept if it is 1-200 visible ASCII characters: UUIDs, ULIDs, base64, AWS's
# "Root=1-...;Parent=..." all pass; spaces, control and non-ASCII characters (log forging,
# header smuggling) get a fresh id instead.
_REQUEST_ID = re.compile(r"^[!-~]{1,200}$")


def request_id_of(request: web.Request, fresh: Callable[[], str]) -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if given and _REQUEST_ID.match(given) else fresh()


def id_generator() -> Callable[[], str]:
    """Unique request ids without a syscall each: a random per-process prefix and a counter."""
    prefix = uuid.uuid4().hex[:16]
    counter = itertools.count((1 << 64) + 1)  # hex() of these: "0x1" and then 16 digits
    return lambda: prefix + hex(next(counter))[3:]


async def read_body(request: web.Request, limit: int, within: float | None = None) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise GatewayError(413, "body_too_large", f"The request body exceeds {limit} bytes.")
    if not request.body_exists:
        return b""
    chunks, size = [], 0
    try:
        # One deadline for the whole body: a client trickling bytes cannot hold us forever.
        async with asyncio.timeout(within):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise GatewayError(
                        413, "body_too_large", f"The request body exceeds {limit} bytes."
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise GatewayError(
            408, "request_timeout", f"The request body did not arrive within {within:g}s."
        ) from None
    return b"".join(chunks)


def forward_headers(
    request: web.Request,
    caller: Caller,
    source: CIMultiDictProxy[str] | CIMultiDict[str] | None = None,
) -> CIMultiDict[str]:
    given = request.headers if source is None else source
    drop = named_by_connection(tuple(given.getall("Connection", ())), _NOT_FORWARDED)
    out: CIMultiDict[str] = CIMultiDict(
        [
            (k, v)
            for k, v in given.items()
            if (name := k.lower()) not in drop and not name.startswith("x-gateway-")
        ]
    )
    if caller.user_agent and "User-Agent" not in out:
        out["User-Agent"] = caller.user_agent
    if caller.strip_body:
        out.popall("Content-Type", None)
    prior = request.headers.get("X-Forwarded-For")
    peer = request.remote or "unknown"
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    out["X-Forwarded-Proto"] = request.scheme
    return out


def route_of(request: web.Request) -> Route:
    path = request.raw_path.split("?", 1)[0]
    if not path.startswith("/"):
        # aiohttp accepts absolute-form targets (GET http://host/...) and then trusts their host
        # in request.url/request.host; the gateway never does: it only talks to its upstreams.
        raise GatewayError(
            400, "invalid_target", "The request target must be a path, not an absolute URL."
        )
    try:
        return resolve(path)
    except RouteError as exc:
        raise GatewayError(404, "not_found", f"{exc}.") from exc


# nginx's status for a request whose caller hung up before the answer: never sent, only logged
# and counted, so that callers giving up (their own timeout while queued, say) show as such.
CLIENT_CLOSED_REQUEST: Final = 499


def caller_left(request: web.Request) -> bool:
    """Whether the caller's connection is gone: aiohttp drops the transport, then cancels the
    handler. A handler cancelled while the connection stays (a shutdown past its grace) is
    the gateway's doing."""
    return request.transport is None or request.transport.is_closing()


# A client redirected below the URL (a transport that swaps the address) still names Harvest
# in Host: links built from it would lead back to the real service, over plain HTTP.
_HARVEST_HOSTS = frozenset({"api.harvestapp.com", "id.getharvest.com"})
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def public_origin(request: web.Request, settings: Settings) -> str:
    """Where this caller reached us: ``--public-url`` when set, else its own scheme and Host.

    So links keep working behind a listener on 0.0.0.0 or a port mapping; a malformed Host
    falls back to the listen address (it only ever shapes that caller's own links).
    """
    if settings.public_url:
        return settings.public_origin
    host = request.headers.get("Host", "")
    if _HOST.match(host) and host.split(":", 1)[0].lower() not in _HARVEST_HOSTS:
        return f"{request.scheme}://{host}"
    return settings.public_origin
