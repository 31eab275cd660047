"""The catch-all handler: aiohttp request → validated ``Exchange`` → pipeline → response."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import _default_expect_handler as default_expect_handler
from multidict import CIMultiDict, CIMultiDictProxy
from structlog.contextvars import bind_contextvars

from gateway.clock import Clock, millis
from gateway.core.cache_rules import Outcome
from gateway.core.credentials import Credentials, Grant, authorize
from gateway.core.headers import (
    INVALID_TOKEN_CHALLENGE,
    Caller,
    Reject,
    check_api_request,
    claimed_account,
)
from gateway.core.routes import Route, Upstream
from gateway.errors import GatewayError
from gateway.model import CallNext, Exchange
from gateway.pipeline.cache import ResponseCache
from gateway.policy.schema import Policy
from gateway.settings import AccessLog, Settings
from gateway.stores.envelope import Entry
from gateway.telemetry.logging import AccessLogger
from gateway.telemetry.metrics import Metrics, request_labels
from gateway.web.hits import UNSEEN, Answer, Plan, PlanMemo, general_shape, shape_of
from gateway.web.inbound import (
    CLIENT_CLOSED_REQUEST,
    caller_left,
    forward_headers,
    public_origin,
    read_body,
    request_id_of,
    route_of,
)
from gateway.web.respond import buffered_response, error_response, json_response, stream_reply

Notes = dict[str, Any]


def rejected(metrics: Metrics, verdict: Reject) -> GatewayError:
    metrics.rejections.labels(verdict.error).inc()
    # Harvest's own 403 body is {"message": ...}; keep it beside ours for Harvest clients.
    detail = {"message": verdict.description} if verdict.status == 403 else {}
    headers = (
        {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE} if verdict.error == "invalid_token" else {}
    )
    return GatewayError(
        verdict.status, verdict.error, verdict.description, headers=headers, detail=detail
    )


@dataclass(slots=True, kw_only=True)
class ProxyHandler:
    """The catch-all handler: aiohttp request → ``Exchange`` → pipeline → response.

    Holds everything a request needs, so the hot path never looks anything up on the app.
    """

    settings: Settings
    policy: Policy
    clock: Clock
    metrics: Metrics
    access: AccessLogger  # one line per request
    pipeline: CallNext
    request_ids: Callable[[], str]
    credentials: Credentials | None = None
    # Proxy mode with a cache: fresh hits are answered from memory before anything else.
    cache: ResponseCache | None = None
    plans: PlanMemo = field(default_factory=PlanMemo)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        started = self.clock.monotonic()
        request_id = request_id_of(request, self.request_ids)
        cache = self.cache
        if cache is not None and request.method == "GET" and not request.body_exists:
            plan = self.plans.get(shape_of(request))
            if plan is UNSEEN:
                plan = await self._plan(request, cache)
            if plan is not None:
                hit = self._answer_hit(plan, cache, request_id, started)
                if hit is not None:
                    return hit
        # Every line logged while this request is handled, in any stage, carries its id. aiohttp
        # runs each request in a task of its own, with its own copy of the context: the binding
        # ends with the request, no reset needed.
        bind_contextvars(request_id=request_id)
        # The whole miss path is written out here, not in a coroutine of its own: every await
        # of the upstream exchange passes down and back up through each frame above it.
        metrics = self.metrics
        exchange: Exchange | None = None
        status, route = 500, "/{unrouted}"
        metrics.active += 1
        try:
            try:
                resolved = route_of(request)
                route = resolved.template
                prepared = await self.prepare(request, resolved, request_id)
                if isinstance(prepared, Reject):
                    raise rejected(metrics, prepared)
                exchange = prepared
                reply = await self.pipeline(exchange)
            except GatewayError as exc:
                resp: web.StreamResponse = error_response(exc)
                # The gateway's own answers carry the headers every answer does.
                resp.headers["X-Request-Id"] = request_id
                resp.headers.setdefault("X-Gateway-Queue-Wait", "0")  # refused before queueing
                notes = exchange.notes if exchange is not None else {}
                resp.headers["X-Cache"] = str(notes.get("cache", "BYPASS"))
                if exc.status in (502, 504):
                    metrics.upstream_errors.labels(exc.code).inc()
            else:
                decorate(reply.headers, exchange.notes, request_id)
                stream = reply.stream
                if stream is None:  # the common case, answered without a coroutine
                    resp = buffered_response(reply)
                else:
                    timeout = self.settings.client_timeout
                    resp = await stream_reply(request, reply, stream, timeout)
            status = resp.status
            return resp
        except (asyncio.CancelledError, ConnectionResetError):
            if caller_left(request):  # not the gateway's failure: not counted as a 5xx
                status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            metrics.active -= 1
            if exchange is None:  # refused before it was one: the account it names, if any
                account = claimed_account(request.headers, request.query)
                self._account(request, started, status, route, account, {}, request_id)
            else:
                self._account(request, started, status, route, exchange.account_id,
                              exchange.notes, request_id)  # fmt: skip

    def _answer_hit(
        self, plan: Plan, cache: ResponseCache, request_id: str, started: float
    ) -> web.Response | None:
        """A fresh copy in memory for this request, answered without building an ``Exchange``:
        what every hit on the entry shares is built once, at its first hit."""
        found = cache.fresh_near(plan.key, plan.rule)
        if found is None:
            return None
        entry, age = found
        answer = plan.answer
        if answer is None or answer.entry() is not entry:
            answer = plan.answer = self._answer(plan, entry)
        resp = web.Response(status=entry.status, reason=entry.reason or None,
                            headers=answer.headers, body=entry.body)  # fmt: skip
        headers = resp.headers
        headers["X-Request-Id"] = request_id
        if age:
            headers["Age"] = str(age)
        elapsed = self.clock.monotonic() - started
        metrics = self.metrics
        metrics.requests.add(answer.labels)
        metrics.request_duration.observe(elapsed, "GET")
        if answer.line is not None:
            answer.line.write(request_id, millis(elapsed))
        return resp

    def _answer(self, plan: Plan, entry: Entry) -> Answer:
        hit = str(Outcome.HIT)
        headers = CIMultiDict(entry.headers)
        decorate(headers, {"cache": hit, "age": 0}, "")  # X-Request-Id: set per request
        line = None
        if wants_access_log(self.settings.access_log, entry.status, hit):
            line = self.access.fixed(account_id=plan.account_id, route=plan.template,
                                     status=entry.status, cache=hit)  # fmt: skip
        labels = request_labels(plan.template, "GET", entry.status, hit)
        return Answer(weakref.ref(entry), headers, labels, line)

    async def _plan(self, request: web.Request, cache: ResponseCache) -> Plan | None:
        """The plan of this request's shape, kept under its general shape: a request carrying
        its own id or trace context is looked up twice, the first time in vain, but does not
        fill the memo with shapes seen once."""
        shape = shape_of(request)
        general = general_shape(shape)
        if general is not None:
            shape = general
            known = self.plans.get(shape)
            if known is not UNSEEN:
                return known
        plan = await self._decide(request, cache)
        self.plans.put(shape, plan)
        return plan

    async def _decide(self, request: web.Request, cache: ResponseCache) -> Plan | None:
        """The full path's own decisions for this request, with none of its side effects."""
        try:
            prepared = await self.prepare(request, route_of(request), "")
        except GatewayError:
            return None
        if isinstance(prepared, Reject) or prepared.account_id is None:
            return None
        found = cache.hit_key(prepared)
        if found is None:
            return None
        key, rule = found
        return Plan(prepared.route.template, prepared.account_id, key, rule)

    def managed_headers(
        self, request: web.Request, route: Route
    ) -> tuple[Grant | None, CIMultiDictProxy[str] | CIMultiDict[str]] | Reject:
        """In managed mode, check the caller's gateway key and put the account's token in its
        place."""
        creds = self.credentials
        if creds is None:
            return None, request.headers
        if route.upstream is not Upstream.API:
            return Reject(403, "forbidden", "Harvest ID (/id/) is not served in managed mode: "
                          "the gateway holds the tokens.")  # fmt: skip
        outcome = authorize(
            creds, method=request.method, headers=request.headers, query=request.query
        )
        if isinstance(outcome, Reject):
            return outcome
        headers = CIMultiDict(request.headers)
        headers.popall("X-Gateway-Key", None)
        headers["Authorization"] = outcome.authorization
        headers["Harvest-Account-Id"] = outcome.account_id
        return outcome, headers

    async def prepare(
        self, request: web.Request, route: Route, request_id: str
    ) -> Exchange | Reject:
        """The request validated as Harvest would, as an ``Exchange``, or why it is rejected."""
        settings, policy = self.settings, self.policy
        head = self._head_verdict(request, route)
        if isinstance(head, Reject):
            return head
        grant, given = head
        body = b""
        if request.body_exists:
            body = await read_body(request, settings.max_body, settings.client_timeout)
        verdict = self._check(request, route, given, body)
        if isinstance(verdict, Reject):
            return verdict
        if grant is not None:
            verdict = replace(verdict, account_id=grant.account_id, principal=grant.principal)

        def upstream_headers() -> CIMultiDict[str]:
            headers = forward_headers(request, verdict, given)
            for name, value in policy.headers.inject:
                headers[name] = value
            return headers

        return Exchange(
            method=request.method,
            route=route,
            raw_query=request.raw_path.partition("?")[2],
            header_factory=upstream_headers,
            body=b"" if verdict.strip_body else body,
            account_id=verdict.account_id,
            principal=verdict.principal,
            request_id=request_id,
            received=self.clock.monotonic(),
            caller_headers=request.headers,
            public_origin=public_origin(request, settings),
        )

    def _head_verdict(
        self, request: web.Request, route: Route
    ) -> tuple[Grant | None, CIMultiDictProxy[str] | CIMultiDict[str]] | Reject:
        """What the request's head alone refuses (the gateway key in managed mode, Harvest's
        header checks), decided before any body is read or, behind Expect: 100-continue,
        sent; else the grant and the headers to check the body with."""
        managed = self.managed_headers(request, route)
        if isinstance(managed, Reject) or not request.body_exists:
            return managed  # without a body, the full check below is the same check
        early = self._check(request, route, managed[1], b"")
        return early if isinstance(early, Reject) else managed

    def _check(
        self,
        request: web.Request,
        route: Route,
        given: CIMultiDictProxy[str] | CIMultiDict[str],
        body: bytes,
    ) -> Caller | Reject:
        return check_api_request(
            method=request.method,
            headers=given,
            query=request.query,
            body=body,
            rules=self.policy.headers,
            needs_account=route.upstream is Upstream.API,
        )

    async def expect(self, request: web.Request) -> None:
        """The catch-all route's ``Expect`` handler: aiohttp's ``100 Continue`` only for a
        request whose headers pass, so that no caller uploads a body the gateway would throw
        away. Any other request gets no 100: the handler refuses it without reading its body."""
        try:
            route = route_of(request)
        except GatewayError:
            return
        length = request.content_length
        if length is not None and length > self.settings.max_body:
            return  # read_body's 413
        if isinstance(self._head_verdict(request, route), Reject):
            return
        await default_expect_handler(request)  # the router's own (private, same across 3.x)

    def _account(
        self,
        request: web.Request,
        started: float,
        status: int,
        route: str,
        account_id: str | None,
        notes: Notes,
        request_id: str,
    ) -> None:
        """Metrics and the access line of one finished request."""
        metrics = self.metrics
        elapsed = self.clock.monotonic() - started
        cache = str(notes.get("cache", "none"))
        metrics.count_request(route, request.method, status, cache)
        metrics.observe_request(request.method, elapsed)
        if wants_access_log(self.settings.access_log, status, cache):
            self.access.request(
                request_id=request_id,
                account_id=account_id,
                method=request.method,
                route=route,
                status=status,
                duration_ms=millis(elapsed),
                queue_wait_ms=notes.get("queue_wait_ms", 0),
                upstream_ms=notes.get("upstream_ms"),
                upstream_attempts=notes.get("upstream_attempts"),
                cache=cache,
            )


def wants_access_log(policy: AccessLog, status: int, cache: str) -> bool:
    """``all`` logs every request; ``misses`` skips answers served from the cache (the hot path,
    where a log line costs as much as the answer); ``errors`` keeps only statuses >= 400."""
    if policy is AccessLog.ALL:
        return True
    if policy is AccessLog.ERRORS:
        return status >= 400
    return cache not in ("HIT", "STALE", "COALESCED")


def decorate(h: CIMultiDict[str], notes: Notes, request_id: str) -> None:
    """The headers every proxied answer carries; a 429 never escapes (see admission)."""
    upstream_id = h.get("X-Request-Id")
    if upstream_id and upstream_id != request_id:
        h["X-Upstream-Request-Id"] = upstream_id
    h["X-Request-Id"] = request_id
    h["X-Gateway-Queue-Wait"] = str(notes.get("queue_wait_ms", 0))
    if notes.get("upstream_attempts", 1) > 1:  # sent again after a transient failure
        h["X-Gateway-Upstream-Attempts"] = str(notes["upstream_attempts"])
    # Every proxied answer says what the cache did: BYPASS where no cache stage looked (writes,
    # Harvest ID, record and replay modes, a policy without cache rules).
    h["X-Cache"] = str(notes.get("cache", "BYPASS"))
    if "age" in notes:
        h["Age"] = str(notes["age"])


def not_found(path: str) -> web.Response:
    return json_response(
        404, {"error": "not_found", "error_description": f"The gateway serves nothing at {path}."}
    )
