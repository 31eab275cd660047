"""The simulator: an aiohttp app that behaves like Harvest API v2 (+ Harvest ID)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from . import resources
from .config import SimConfig
from .context import Ctx
from .data import ACCOUNTS, EPOCH, AccountData, build_account
from .faults import Fault, FaultPlan
from .identity import ACCOUNTS_PATH, TOKEN_PATH, TokenIssuer
from .pagination import PaginationError
from .ratelimit import RateLimiter, max_in_window, retry_after_seconds
from .responses import (
    GET_BODY_MESSAGE,
    JSON_CT,
    Reply,
    bad_request,
    dump,
    json_reply,
    route_not_found,
    too_many_requests,
    unauthorized,
    unprocessable,
)

_PREFIXES = ("/api/v2/", "/v2/")
_ADMIN_PREFIX = "/__sim__/"
_TRUNCATE_EXTRA = 64


@dataclass
class SimRequest:
    """One request as the simulator saw it (``status`` 0: connection reset, no response)."""

    t: float
    method: str
    path: str
    query: str
    account_id: str | None
    token: str | None
    status: int
    headers: dict[str, str]
    body: bytes
    counted: bool = False
    """Whether it took a rate-limit slot (admitted API request with an account id)."""
    is_report: bool = False


def _split(path: str) -> tuple[str | None, str]:
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            rel = path[len(prefix) :]
            return prefix.rstrip("/"), rel.removesuffix(".json")
    if path in ("/v2", "/api/v2"):
        return path, ""
    return None, path


def _credentials(request: web.Request) -> tuple[str | None, str | None]:
    token: str | None = None
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip() or None
    token = token or request.query.get("access_token") or None
    account = request.headers.get("Harvest-Account-Id") or request.query.get("account_id")
    return token, (account.strip() or None) if account else None


def _accepts_gzip(header: str) -> bool:
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().replace(" ", "")
            return q not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


class Simulator:
    """An in-memory Harvest. State (records, log, windows, faults) is per instance."""

    def __init__(
        self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.clock = clock
        self.log: list[SimRequest] = []
        self.faults = FaultPlan()
        self.limiter = RateLimiter(self.config)
        self.tokens = TokenIssuer()
        self.accounts: dict[str, AccountData] = {a: build_account(a) for a in ACCOUNTS}
        self._clock_zero = clock()
        self._retry_after_flip = False

    # --- inspection API ---------------------------------------------------------------

    def count(self, *, status: int | None = None) -> int:
        return sum(1 for r in self.log if status is None or r.status == status)

    def max_in_window(
        self, window: float, *, reports_only: bool = False, account_id: str | None = None
    ) -> int:
        """Most admitted (rate-limit-counted, non-429) requests in any window of that length.

        ``account_id=None`` counts every account together."""
        stamps = [
            r.t
            for r in self.log
            if r.counted
            and (account_id is None or r.account_id == account_id)
            and (r.is_report or not reports_only)
        ]
        return max_in_window(stamps, window)

    def reset_log(self) -> None:
        self.log.clear()

    def set_latency(self, seconds: float) -> None:
        self.config.latency = seconds

    def reset(self) -> None:
        """Back to a fresh state: log, rate windows, faults, tokens and records."""
        self.log.clear()
        self.faults.clear()
        self.limiter.reset()
        self.tokens = TokenIssuer()
        self.accounts = {a: build_account(a) for a in ACCOUNTS}
        self._retry_after_flip = False

    def app(self) -> web.Application:
        application = web.Application(client_max_size=32 * 1024**2)
        application.router.add_route("*", "/{tail:.*}", self._handle)
        return application

    # --- request pipeline ---------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.clock() - self._clock_zero)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        t = self.clock()
        body = await request.read()
        if request.path.startswith(_ADMIN_PREFIX):
            return self._respond(request, await self._admin(request, body), started)
        prefix, rel = _split(request.path)
        token, account_id = _credentials(request)
        entry = SimRequest(
            t=t,
            method=request.method,
            path=request.path,
            query=request.query_string,
            account_id=account_id,
            token=token,
            status=0,
            headers=dict(request.headers),
            body=body,
        )
        log, limit = self.log, self.config.log_limit
        if limit is not None and len(log) >= limit:
            del log[: max(1, limit // 2)]  # amortised: one move per half a limit of requests
        log.append(entry)
        paths = (request.path, f"/v2/{rel}" if prefix else request.path)
        fault = self.faults.take(request.method, paths)
        delay = self.config.latency + (fault.delay if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None and fault.name == "reset":
            return self._reset_connection(request)
        if fault is not None and fault.status:
            reply = self._too_many() if fault.status == 429 else self._fault_reply(fault)
        else:
            reply = self._dispatch(request, entry, prefix, rel, body)
        entry.status = reply.status
        response = self._respond(request, reply, started)
        if fault is not None and fault.name == "truncate":
            return await self._truncate(request, response)
        return response

    def _dispatch(
        self, request: web.Request, entry: SimRequest, prefix: str | None, rel: str, body: bytes
    ) -> Reply:
        method = request.method.upper()
        if request.path == TOKEN_PATH and method == "POST":
            return self.tokens.token(body, request.content_type, request.query)
        if request.path == ACCOUNTS_PATH and method == "GET":
            return self.tokens.accounts(entry.token)
        if prefix is None:
            return route_not_found()
        if method == "HEAD":
            method = "GET"
        is_report = method == "GET" and resources.is_report_path(rel)
        if entry.account_id is not None:
            self.limiter.config = self.config  # follow a replaced config object
            wait = self.limiter.admit(entry.account_id, entry.t, is_report=is_report)
            if wait is not None:
                return self._too_many(wait)
            entry.counted, entry.is_report = True, is_report
        if not request.headers.get("User-Agent", "").strip():
            return bad_request("Bad Request: a User-Agent header is required.")
        if method == "GET" and body:
            return bad_request(GET_BODY_MESSAGE)
        found = resources.resolve(method, rel)
        if found is None:
            return route_not_found()
        route, match = found
        grant = self.tokens.grant_for(entry.token)
        if grant is None or entry.account_id is None or grant.account_id != entry.account_id:
            return unauthorized()
        ctx = Ctx(
            method=method,
            prefix=prefix,
            path=rel,
            query=request.query,
            body=body,
            content_type=request.headers.get("Content-Type", ""),
            base=self._base(request),
            location_prefix=self.config.location_prefix,
            data=self.accounts[grant.account_id],
            grant=grant,
            now=self._now(),
        )
        try:
            return route.handler(ctx, match)
        except PaginationError as exc:
            return unprocessable(str(exc))

    def _base(self, request: web.Request) -> str:
        if self.config.public_base:
            return self.config.public_base.rstrip("/")
        return f"{request.scheme}://{request.host}"

    def _too_many(self, wait: float | None = None) -> Reply:
        mode = self.config.retry_after
        send = mode == "always"
        if mode == "alternate":
            send = not self._retry_after_flip
            self._retry_after_flip = not self._retry_after_flip
        if wait is None:
            wait = self.config.general_window
        return too_many_requests(retry_after_seconds(wait) if send else None)

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        status = fault.status
        if status >= 400:
            reason = web.Response(status=status).reason
            return json_reply({"status": status, "error": reason}, status)
        return json_reply({}, status)

    def _respond(self, request: web.Request, reply: Reply, started: float) -> web.Response:
        headers: dict[str, str] = {
            "X-Request-Id": uuid.uuid4().hex,
            "Vary": "Origin",
        }
        ok = 200 <= reply.status < 300
        headers["Cache-Control"] = "no-store" if ok else "no-cache, no-store"
        if reply.content_type:
            headers["Content-Type"] = reply.content_type
        headers.update(reply.headers)
        status, body = reply.status, reply.body
        if reply.status in (200, 201) and body:
            etag = f'W/"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
            headers["ETag"] = etag
            inm = request.headers.get("If-None-Match")
            if request.method in ("GET", "HEAD") and inm and _etag_matches(inm, etag):
                status, body = 304, b""
                headers.pop("Content-Type", None)
        if body and _accepts_gzip(request.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding, Origin"
        headers["X-Runtime"] = f"{time.perf_counter() - started:.6f}"
        return web.Response(status=status, body=body, headers=headers)

    @staticmethod
    def _reset_connection(request: web.Request) -> web.Response:
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)

    @staticmethod
    async def _truncate(request: web.Request, full: web.Response) -> web.StreamResponse:
        body = full.body if isinstance(full.body, bytes) else b""
        stream = web.StreamResponse(status=full.status, headers=full.headers)
        stream.content_length = len(body) + _TRUNCATE_EXTRA
        await stream.prepare(request)
        await stream.write(body[: max(0, len(body) // 2)])
        if request.transport is not None:
            request.transport.close()
        return stream

    # --- /__sim__ admin endpoints -------------------------------------------------------

    async def _admin(self, request: web.Request, body: bytes) -> Reply:
        what = request.path[len(_ADMIN_PREFIX) :].rstrip("/")
        method = request.method.upper()
        if what == "log" and method == "GET":
            rows = [
                {
                    "t": r.t,
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "account_id": r.account_id,
                    "status": r.status,
                }
                for r in self.log
            ]
            return json_reply({"count": len(rows), "requests": rows})
        if what == "reset" and method == "POST":
            self.reset()
            return json_reply({"ok": True})
        if what == "faults" and method == "POST":
            spec = self._json(body)
            try:
                self.faults.add(
                    str(spec["kind"]),
                    str(spec.get("path_prefix", "/v2/")),
                    int(spec.get("times", 1)),
                    method=spec.get("method"),
                )
            except (KeyError, ValueError, TypeError) as exc:
                return unprocessable(f"bad fault: {exc}")
            return json_reply({"pending": len(self.faults.pending)}, 201)
        if what == "faults" and method == "DELETE":
            self.faults.clear()
            return json_reply({"pending": 0})
        if what == "config" and method in ("GET", "PATCH", "POST"):
            known = {f.name for f in fields(SimConfig)}
            for key, value in self._json(body).items():
                if key in known:
                    setattr(self.config, key, value)
            return json_reply({f.name: getattr(self.config, f.name) for f in fields(SimConfig)})
        return Reply(404, dump({"status": 404, "error": "Not Found"}), JSON_CT)

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            loaded = json.loads(body or b"{}")
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
