"""The cache stage, outermost in the pipeline: a hit costs no quota and no round trip.

    cache ▸ admission ▸ record ▸ transport

Decisions (keys, freshness, what a write invalidates) come from ``gateway.core.cache_rules``;
storage from a ``CacheStore``. This module owns what happens in time: single flight (one fill
per key in this process, one per key across replicas through the store's fill lock), stale
answers when upstream fails or the quota wait is too long, and background refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Final

import structlog
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.clock import Clock
from gateway.core.cache_rules import (
    WRITE_METHODS,
    Directive,
    KeyParts,
    Outcome,
    directive,
    invalidation_prefixes,
    key_parts,
    none_match,
    not_modified_headers,
    revalidated_headers,
    rule_for,
    storable,
    stored_headers,
)
from gateway.core.routes import Upstream
from gateway.errors import GatewayError
from gateway.model import CallNext, Exchange, Reply
from gateway.policy.schema import CacheRule, CacheRules
from gateway.settings import Settings
from gateway.stores.cache import (
    LOCAL_LOCK,
    CacheStore,
    MemoryStore,
    MemoryTier,
    Prefixes,
    TierStats,
)
from gateway.stores.cache_redis import RedisOptions, RedisStore
from gateway.stores.envelope import Entry
from gateway.tasks import cancel_all, reraise_if_cancelling
from gateway.telemetry.logging import Logger
from gateway.telemetry.metrics import Metrics

# Caller headers that make a request conditional or budgeted: not shared, not replayed.
_CONDITIONAL = ("If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "Range")
_BUDGET = "x-gateway-max-wait"
_POLL = 0.05  # seconds between looks at Redis while another replica fills


@dataclass(frozen=True, slots=True)
class Job:
    """One cacheable request on its way: what every step of a miss needs to know."""

    key: str
    parts: KeyParts
    exchange: Exchange
    call_next: CallNext
    rule: CacheRule


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one upstream fetch produced, shareable with every request for the same key."""

    entry: Entry  # the reply, buffered (stored or not)
    leader_headers: tuple[tuple[str, str], ...]  # unfiltered, for the request that fetched
    stored: bool
    revalidated: bool = False  # upstream said 304: our copy was still right
    from_peer: bool = False  # another replica fetched it
    # A streamed (non-JSON) upstream answer is never buffered or stored: it goes to the one
    # request that fetched it, and any follower fetches for itself.
    stream: Reply | None = None


def _reply(entry: Entry, headers: tuple[tuple[str, str], ...] | None = None) -> Reply:
    return Reply(
        status=entry.status,
        reason=entry.reason,
        headers=CIMultiDict(entry.headers if headers is None else headers),
        body=entry.body,
    )


def _only_if_none_match(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> str | None:
    """The caller's ``If-None-Match`` when it is the request's only condition."""
    value = headers.get("If-None-Match")
    if value is None or any(name in headers for name in _CONDITIONAL if name != "If-None-Match"):
        return None
    return value


def _not_modified(entry: Entry) -> Reply:
    headers = CIMultiDict(not_modified_headers(entry.headers))
    return Reply(status=304, reason="Not Modified", headers=headers, body=b"")


def _conditional(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> bool:
    for name in _CONDITIONAL:  # noqa: SIM110 (any(<genexpr>) costs a frame per name, per hit)
        if name in headers:
            return True
    return False


def _stale_worthy(status: int) -> bool:
    """Answers a stale copy may replace: upstream failures and a quota wait over budget."""
    return status >= 500


def _complete(reply: Reply, body: bytes) -> bool:
    """A body that parses when it says it is JSON: a cut-short reply must never be stored."""
    if "json" not in reply.headers.get("Content-Type", "").lower():
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


# What ``note`` records for a hit, built once for the hit path's ``fresh_near``.
_HIT: Final = Outcome.HIT.value
_HIT_LABELS: Final = (_HIT.lower(),)


class ResponseCache:
    """The stage (``__call__``) plus the state it needs: in-flight fills, background refreshes."""

    def __init__(
        self,
        *,
        rules: CacheRules,
        store: CacheStore,
        clock: Clock,
        metrics: Metrics,
        max_wait: float = 60.0,
        lock_ttl: float = 10.0,
        log: Logger | None = None,
    ) -> None:
        self.log: Logger = log or structlog.get_logger("gateway.cache")
        self.rules = rules
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.max_wait = max_wait  # how long a waiter follows another replica's fill
        self.lock_ttl = lock_ttl
        self._inflight: dict[str, asyncio.Task[Fetched]] = {}
        self._refreshing: dict[str, asyncio.Task[Any]] = {}
        self._gauges_task: asyncio.Task[None] | None = None
        self.counts: Counter[str] = Counter()
        self._rules: dict[tuple[str, str], CacheRule | None] = {}  # (method, template) → rule
        # Each outcome's header value and metric label (an enum's .value is a Python call).
        self._outcome = {o: (o.value, o.value.lower()) for o in Outcome}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        self._gauges_task = asyncio.create_task(self._gauges(), name="cache-gauges")

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[Any]] = [*self._inflight.values(), *self._refreshing.values()]
        if self._gauges_task is not None:
            tasks.append(self._gauges_task)
        await cancel_all(tasks)
        await self.store.aclose()

    async def _gauges(self) -> None:
        while True:
            try:
                await self.publish_stats()
            except Exception:  # a failing store skips one update
                reraise_if_cancelling()
            await self.clock.sleep(5.0)

    async def publish_stats(self) -> dict[str, TierStats]:
        stats = await self.store.stats()
        for tier, s in stats.items():
            self.metrics.cache_entries.labels(tier).set(s.entries)
            self.metrics.cache_bytes.labels(tier).set(s.bytes)
        return stats

    def _note(self, exchange: Exchange, outcome: Outcome, age: float = 0.0) -> None:
        self.note(exchange.notes, outcome, age)

    def note(self, notes: dict[str, Any], outcome: Outcome, age: float = 0.0) -> None:
        """Record how the cache answered: in the request's notes (headers, log) and metrics."""
        value, label = self._outcome[outcome]
        notes["cache"] = value
        notes["age"] = int(age)
        self.metrics.cache_requests.inc(label)
        self.counts[value] += 1

    def rule(self, method: str, template: str) -> CacheRule | None:
        which = (method, template)
        if which not in self._rules:  # templates are a bounded set
            self._rules[which] = rule_for(self.rules, method, template)
        return self._rules[which]

    def hit_key(self, exchange: Exchange) -> tuple[str, CacheRule] | None:
        """The key and rule of a GET a stored copy may answer as it is; None when none may
        (route not cached, no identity, a conditional request, or the caller asks otherwise)."""
        if exchange.route.upstream is not Upstream.API:
            return None
        caller = exchange.caller_headers
        rule = self.rule(exchange.method, exchange.route.template)
        if rule is None or _conditional(caller):
            return None
        if directive(caller.get("Cache-Control"), caller.get("Pragma")) is not Directive.USE:
            return None
        parts = self._key_parts(exchange)
        return None if parts is None else (parts.key, rule)

    def fresh_near(self, key: str, rule: CacheRule) -> tuple[Entry, int] | None:
        """A fresh copy this process holds in memory and its age in seconds (counted as a hit),
        or None: never any I/O, so a caller may try it first and fall back to the whole stage."""
        now = self.clock.wall()
        entry = self.store.get_near(key, now)
        if entry is None or now - entry.stored_at >= rule.ttl:
            return None
        self.metrics.cache_requests.add(_HIT_LABELS)
        self.counts[_HIT] += 1
        return entry, int(now - entry.stored_at)

    @staticmethod
    def _key_parts(exchange: Exchange) -> KeyParts | None:
        return key_parts(
            account=exchange.account_id,
            principal=exchange.principal,
            method=exchange.method,
            path=exchange.route.path,
            raw_query=exchange.raw_query,
            public_origin=exchange.public_origin,
        )

    # -- the stage ---------------------------------------------------------------------------

    async def __call__(self, exchange: Exchange, call_next: CallNext) -> Reply:
        if exchange.route.upstream is not Upstream.API:
            return await call_next(exchange)
        if exchange.method in WRITE_METHODS:
            return await self._write(exchange, call_next)
        rule = self.rule(exchange.method, exchange.route.template)
        if rule is None:
            return await call_next(exchange)
        parts = self._key_parts(exchange)
        caller = exchange.caller_headers
        if parts is None or _conditional(caller):
            answer = None if parts is None else await self._condition(exchange, parts.key, rule)
            if answer is not None:
                return answer
            self._note(exchange, Outcome.BYPASS)
            return await call_next(exchange)
        wish = directive(caller.get("Cache-Control"), caller.get("Pragma"))
        key = parts.key
        now = self.clock.wall()
        entry = await self.store.get(key, now)
        if wish is not Directive.USE:
            self._note(exchange, Outcome.BYPASS)
            job = Job(key, parts, exchange, call_next, rule)
            fetched = await self._fetch(job, entry, store=wish is Directive.REFRESH)
            if fetched.stream is not None:
                return fetched.stream
            return _reply(fetched.entry, fetched.leader_headers)
        stale: Entry | None = None
        if entry is not None:
            age = now - entry.stored_at
            if age < rule.ttl:
                self._note(exchange, Outcome.HIT, age)
                return _reply(entry)
            if age < rule.ttl + rule.stale:
                stale = entry
                if key in self._refreshing:  # a refresh is already queued: don't wait for it
                    self._note(exchange, Outcome.STALE, age)
                    return _reply(entry)
        return await self._miss(Job(key, parts, exchange, call_next, rule), stale)

    async def _condition(self, exchange: Exchange, key: str, rule: CacheRule) -> Reply | None:
        """A caller's ``If-None-Match`` (its only condition) checked against its own fresh copy
        in the cache: 304 when the copy's ETag is listed, else the copy, and no quota spent.
        None (Harvest decides, as before) without such a copy or with other conditions."""
        caller = exchange.caller_headers
        tags = _only_if_none_match(caller)
        if tags is None or directive(caller.get("Cache-Control"), caller.get("Pragma")) is not (
            Directive.USE
        ):
            return None
        now = self.clock.wall()
        entry = await self.store.get(key, now)
        if entry is None or entry.etag is None or now - entry.stored_at >= rule.ttl:
            return None
        self._note(exchange, Outcome.HIT, now - entry.stored_at)
        return _not_modified(entry) if none_match(tags, entry.etag) else _reply(entry)

    async def _miss(
        self,
        job: Job,
        stale: Entry | None,
    ) -> Reply:
        key, exchange, call_next = job.key, job.exchange, job.call_next
        task = self._inflight.get(key)
        leader = task is None
        if task is None:
            task = self._start_fill(job, stale)
        try:
            fetched = await asyncio.shield(task)
        except GatewayError as exc:
            if stale is not None and _stale_worthy(exc.status):
                return self._serve_stale(job, stale)
            raise
        if fetched.stream is not None:
            if leader:
                self._note(exchange, Outcome.MISS)
                return fetched.stream
            self._note(exchange, Outcome.BYPASS)
            return await call_next(exchange)
        if stale is not None and _stale_worthy(fetched.entry.status):
            return self._serve_stale(job, stale)
        if fetched.revalidated:
            self.metrics.cache_requests.inc("revalidated")
        if leader and not fetched.from_peer:
            self._note(exchange, Outcome.MISS)
            return _reply(fetched.entry, fetched.leader_headers)
        age = max(0.0, self.clock.wall() - fetched.entry.stored_at)
        self._note(exchange, Outcome.COALESCED, age)
        return _reply(fetched.entry)

    def _start_fill(
        self,
        job: Job,
        stale: Entry | None,
        *,
        table: dict[str, asyncio.Task[Any]] | None = None,
    ) -> asyncio.Task[Fetched]:
        """One fill per key, owned by the cache (a caller going away does not cancel it)."""
        key = job.key
        target = self._inflight if table is None else table
        task = asyncio.create_task(self._fill(job, stale))
        target[key] = task

        def done(t: asyncio.Task[Fetched]) -> None:
            if target.get(key) is t:
                del target[key]
            if not t.cancelled() and t.exception() is None:  # retrieved: followers may be gone
                stream = t.result().stream
                if table is not None and stream is not None and stream.release is not None:
                    stream.release()  # a background refresh has no caller to stream to

        task.add_done_callback(done)
        return task

    def _serve_stale(
        self,
        job: Job,
        stale: Entry,
    ) -> Reply:
        key, exchange = job.key, job.exchange
        if key not in self._refreshing and key not in self._inflight:
            background = replace(
                exchange,
                upstream_headers=CIMultiDict(exchange.headers),
                caller_headers=CIMultiDict(
                    (k, v)
                    for k, v in exchange.caller_headers.items()
                    if k.lower() != _BUDGET.lower()
                ),
                notes={},
            )
            self._start_fill(replace(job, exchange=background), stale,
                             table=self._refreshing)  # fmt: skip
        self._note(exchange, Outcome.STALE, self.clock.wall() - stale.stored_at)
        return _reply(stale)

    async def _fill(
        self,
        job: Job,
        stale: Entry | None,
    ) -> Fetched:
        key = job.key
        token = await self.store.acquire(key)
        if token is None:
            peer = await self._follow_peer(key, job.rule)
            if peer is not None:
                return Fetched(peer, peer.headers, stored=True, from_peer=True)
            token = await self.store.acquire(key) or LOCAL_LOCK  # holder gone: fetch ourselves
        return await self._fetch(job, stale, token=token)

    async def _follow_peer(self, key: str, rule: CacheRule) -> Entry | None:
        """Wait for another replica's fill of ``key``; None when it ends without an entry."""
        for _ in range(int(self.max_wait / _POLL)):
            await self.store.wait_fill(key, _POLL)
            now = self.clock.wall()
            entry = await self.store.get(key, now)
            if entry is not None and now - entry.stored_at < rule.ttl:
                return entry
            if not await self.store.locked(key):
                entry = await self.store.get(key, now)
                fresh = entry is not None and now - entry.stored_at < rule.ttl
                return entry if fresh else None
        return None

    async def _fetch(
        self,
        job: Job,
        known: Entry | None,
        *,
        store: bool = True,
        token: str = LOCAL_LOCK,
    ) -> Fetched:
        """Go upstream (revalidating ``known`` by ETag when it has one) and maybe store."""
        key, exchange, rule = job.key, job.exchange, job.rule
        gen = await self.store.generation(job.parts.account)
        keepalive = None
        if token != LOCAL_LOCK:
            keepalive = asyncio.create_task(self._keep_lock(key, token))
        try:
            if known is not None and known.etag and "If-None-Match" not in exchange.headers:
                exchange.headers["If-None-Match"] = known.etag
            reply = await job.call_next(exchange)
            if reply.stream is not None:
                empty = Entry(status=reply.status, reason=reply.reason, headers=(), body=b"",
                              stored_at=0.0, ttl=0.0, stale=0.0, etag=None)  # fmt: skip
                return Fetched(empty, (), stored=False, stream=reply)
            body = await reply.read()
            now = self.clock.wall()
            if reply.status == 304 and known is not None and known.etag:
                headers = revalidated_headers(known.headers, reply.headers.items())
                entry = replace(known, headers=headers, stored_at=now, ttl=rule.ttl,
                                stale=rule.stale)  # fmt: skip
                stored = store and await self.store.put(key, entry, gen=gen)
                if stored:
                    await self.store.notify_fill(key)
                return Fetched(entry, entry.headers, stored=stored, revalidated=True)
            pairs = tuple(reply.headers.items())
            entry = Entry(
                status=reply.status,
                reason=reply.reason,
                headers=stored_headers(pairs),
                body=body,
                stored_at=now,
                ttl=rule.ttl,
                stale=rule.stale,
                etag=reply.headers.get("ETag"),
            )
            stored = False
            if (
                store
                and storable(reply.status, body, pairs, self.rules.max_entry_bytes)
                and _complete(reply, body)
            ):
                stored = await self.store.put(key, entry, gen=gen)
                if stored:
                    await self.store.notify_fill(key)
            return Fetched(entry, pairs, stored=stored)
        finally:
            if keepalive is not None:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
            if token != LOCAL_LOCK:
                await self.store.release(key, token)

    async def _keep_lock(self, key: str, token: str) -> None:
        while True:
            await self.clock.sleep(self.lock_ttl / 3)
            await self.store.extend(key, token)

    # -- writes ------------------------------------------------------------------------------

    async def _write(self, exchange: Exchange, call_next: CallNext) -> Reply:
        """A write that may have changed data drops what it makes wrong, before we answer."""
        try:
            reply = await call_next(exchange)
        except GatewayError as exc:
            if exc.status in (502, 504):  # it may have been applied: forget conservatively
                await self._invalidate_for(exchange)
            raise
        if 200 <= reply.status < 300 or reply.status >= 500:
            await self._invalidate_for(exchange)
        return reply

    async def _invalidate_for(self, exchange: Exchange) -> None:
        if not exchange.account_id:
            return
        prefixes = invalidation_prefixes(self.rules, exchange.route.path)
        dropped = await self.store.invalidate(exchange.account_id, prefixes)
        self.log.debug("cache_invalidated", account_id=exchange.account_id, prefixes=prefixes,
                  dropped=dropped)  # fmt: skip

    async def purge(self, account: str | None, prefixes: Prefixes) -> int:
        return await self.store.invalidate(account, prefixes)


def build_cache(settings: Settings, rules: CacheRules, clock: Clock, metrics: Metrics,
                max_wait: float, log: Logger | None = None) -> ResponseCache:  # fmt: skip
    """The cache for these settings: memory only, or Redis shared with a memory tier in front."""
    store: CacheStore
    if settings.redis_url:
        near = MemoryTier(max_entries=rules.max_entries, max_bytes=rules.max_bytes)
        options = RedisOptions(url=settings.redis_url, near_ttl=rules.near_ttl)

        def health(ok: bool) -> None:
            metrics.degraded.labels("cache_redis").set(0 if ok else 1)

        store = RedisStore(options, near, on_health=health, log=log)
        lock_ttl = options.lock_ttl
    else:
        store = MemoryStore(MemoryTier(max_entries=rules.max_entries, max_bytes=rules.max_bytes))
        lock_ttl = 10.0
    return ResponseCache(rules=rules, store=store, clock=clock, metrics=metrics,
                         max_wait=max_wait, lock_ttl=lock_ttl, log=log)  # fmt: skip
