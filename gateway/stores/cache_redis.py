"""The shared Redis tier of the response cache, through aiocache's ``RedisCache``.

Invalidation is exact without SCAN: each account has a sorted-set index of its keys (score =
expiry) and a generation counter. A fill remembers the generation before going upstream and
discards its own entry if a write bumped it meanwhile, so a write racing a fill never leaves
the pre-write reply behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
import structlog
from aiocache import RedisCache
from redis.exceptions import RedisError

from gateway.core.cache_rules import key_matches
from gateway.stores.cache import LOCAL_LOCK, MemoryTier, Prefixes, TierStats
from gateway.stores.envelope import Entry, EnvelopeSerializer
from gateway.stores.redis_retry import reconnect_once
from gateway.tasks import cancel_all, reraise_if_cancelling
from gateway.telemetry.logging import Logger


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisOptions:
    url: str
    namespace: str = "hgw:cache"
    timeout: float = 0.25  # per operation: a slow cache is a miss, not a stall
    lock_ttl: float = 10.0  # a fill lock lives this long unless its holder extends it
    near_ttl: float = 2.0  # how long the memory tier in front may answer for Redis
    pool_size: int = 64
    # How long a write waits for every replica to confirm it dropped its memory-tier copies.
    ack_timeout: float = 0.5


@dataclass(slots=True)
class _Acks:
    """Confirmations of one invalidation broadcast, counted as they arrive."""

    received: int = 0
    needed: int | None = None  # known once PUBLISH says how many replicas got the message
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.needed is not None and self.received >= self.needed:
            self.done.set()


# Compare-and-delete / compare-and-extend: only the holder may release or extend its lock.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_ERRORS = (RedisError, OSError, TimeoutError, ConnectionError)


def _redis_kwargs(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"--redis-url {url!r}: expected redis:// or rediss://")
    db = parts.path.strip("/") or "0"
    return {
        "endpoint": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": int(db),
        "password": unquote(parts.password) if parts.password else None,
        "ssl": parts.scheme == "rediss",
    }


class RedisStore:
    """Redis shared by replicas (through aiocache ``RedisCache``), a memory tier in front.

    The memory tier answers only while this replica's invalidation subscription is up; when
    it drops, reads go to Redis until it is back (and the memory tier is cleared then).
    """

    def __init__(
        self,
        options: RedisOptions,
        near: MemoryTier,
        *,
        on_health: Callable[[bool], None] | None = None,
        log: Logger | None = None,
    ) -> None:
        # The app's logger (JSON, redacted); a bare one only where a test builds a store alone.
        self.log: Logger = log or structlog.get_logger("gateway.cache")
        self.options = options
        self.near = near
        self.origin = uuid.uuid4().hex
        ns = options.namespace
        self._cache = RedisCache(
            serializer=EnvelopeSerializer(),
            namespace=ns,
            timeout=options.timeout,
            create_connection_timeout=options.timeout,
            pool_max_size=options.pool_size,
            connection_pool_kwargs={"socket_timeout": options.timeout, "retry": reconnect_once()},
            **_redis_kwargs(options.url),
        )
        self.client: aioredis.Redis = self._cache.client
        self._channel = f"{ns}:events"
        self._accounts = f"{ns}:accounts"
        self._bus_task: asyncio.Task[None] | None = None
        self._bus_up = asyncio.Event()
        self._fill_events: dict[str, asyncio.Event] = {}
        self._acks: dict[str, _Acks] = {}
        self._on_health = on_health or (lambda ok: None)
        self._release = self.client.register_script(_RELEASE)
        self._extend = self.client.register_script(_EXTEND)

    def _entry(self, key: str) -> str:
        return f"e:{key}"  # aiocache adds the namespace

    def _full(self, key: str) -> str:
        return f"{self.options.namespace}:e:{key}"

    def _index(self, account: str) -> str:
        return f"{self.options.namespace}:i:{{{account}}}"

    def _gen(self, account: str) -> str:
        return f"{self.options.namespace}:g:{{{account}}}"

    def _lock(self, key: str) -> str:
        return f"{self.options.namespace}:l:{key}"

    async def _guard(self, what: str, op: Awaitable[Any], default: Any) -> Any:
        try:
            async with asyncio.timeout(self.options.timeout):
                result = await op
        except _ERRORS as exc:
            reraise_if_cancelling()
            self._on_health(False)
            self.log.warning("cache_redis_error", op=what, error=type(exc).__name__)
            return default
        self._on_health(True)
        return result

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._bus_task = asyncio.create_task(self._listen(), name="cache-bus")

    async def aclose(self) -> None:
        if self._bus_task is not None:
            await cancel_all([self._bus_task])
            self._bus_task = None
        await self.near.clear()
        await self.client.aclose()  # aiocache's close() calls the deprecated Redis.close()

    # -- entries -----------------------------------------------------------------------------

    def get_near(self, key: str, now: float) -> Entry | None:
        # Only while invalidations can reach this replica (see the class docstring).
        return self.near.peek(key, now) if self._bus_up.is_set() else None

    async def get(self, key: str, now: float) -> Entry | None:
        bus_up = self._bus_up.is_set()
        if bus_up:
            entry = await self.near.get(key, now)
            if entry is not None:
                return entry
        account = key.split("|", 1)[0]
        near_gen = await self.near.generation(account)
        found: Entry | None = await self._guard("get", self._cache.get(self._entry(key)), None)
        if found is None or found.expires_at <= now:
            return None
        if bus_up:
            expires = min(found.expires_at, now + self.options.near_ttl)
            await self.near.put(key, found, gen=near_gen, expires=expires)
        return found

    async def put(self, key: str, entry: Entry, *, gen: int) -> bool:
        account = key.split("|", 1)[0]
        ttl = max(0.001, entry.ttl + entry.stale)
        stored = await self._guard("set", self._cache.set(self._entry(key), entry, ttl=ttl), False)
        if not stored:
            return False
        pipe = self.client.pipeline(transaction=False)
        expiry_ms = int(entry.expires_at * 1000)
        pipe.zadd(self._index(account), {key: expiry_ms})
        pipe.zremrangebyscore(self._index(account), "-inf", int(entry.stored_at * 1000))
        pipe.pexpire(self._index(account), int(ttl * 1000) + 60_000, gt=False)
        pipe.sadd(self._accounts, account)
        pipe.get(self._gen(account))
        results = await self._guard("index", pipe.execute(), None)
        current = int(results[-1] or 0) if results else None
        if current != gen:
            # A write bumped the generation while we fetched (or we cannot tell): drop ours.
            await self._guard("unset", self.client.delete(self._full(key)), 0)
            return False
        near_expiry = min(entry.expires_at, entry.stored_at + self.options.near_ttl)
        near_gen = await self.near.generation(account)
        await self.near.put(key, entry, gen=near_gen, expires=near_expiry)
        return True

    async def generation(self, account: str) -> int:
        value = await self._guard("gen", self.client.get(self._gen(account)), None)
        return int(value or 0) if value is not None else 0

    async def invalidate(self, account: str | None, prefixes: Prefixes) -> int:
        await self.near.invalidate(account, prefixes)
        count = await self._invalidate_redis(account, prefixes)
        await self._broadcast(account, prefixes)
        return count

    async def _broadcast(self, account: str | None, prefixes: Prefixes) -> None:
        """Tell every replica to drop its memory-tier copies, and wait until each has.

        Pub/sub delivery is asynchronous: without the wait, a GET sent to another replica
        right after a PATCH answered could still get the pre-write copy from that replica's
        memory tier. Every subscriber (this replica included) confirms on the same channel;
        PUBLISH says how many received it. A replica that does not confirm in time only
        delays the write: its memory tier forgets on its own within ``near_ttl``.
        """
        ident = uuid.uuid4().hex
        acks = self._acks[ident] = _Acks()
        message = {"t": "inv", "o": self.origin, "a": account, "p": prefixes, "i": ident}
        try:
            receivers = await self._guard(
                "publish", self.client.publish(self._channel, json.dumps(message)), 0
            )
            if not self._bus_up.is_set():
                return  # our own subscription is down: no confirmation could reach us
            acks.needed = int(receivers)
            acks.check()
            try:
                async with asyncio.timeout(self.options.ack_timeout):
                    await acks.done.wait()
            except TimeoutError:
                self.log.warning("cache_invalidation_unconfirmed", replicas=acks.needed,
                                 confirmed=acks.received)  # fmt: skip
        finally:
            del self._acks[ident]

    async def _invalidate_redis(self, account: str | None, prefixes: Prefixes) -> int:
        if account is not None:
            accounts = [account]
        else:
            members = await self._guard("accounts", self.client.smembers(self._accounts), set())
            accounts = sorted(m.decode() for m in members)
        count = 0
        for acct in accounts:
            # Bump first: a fill that read the old generation will now discard its own entry.
            await self._guard("bump", self.client.incr(self._gen(acct)), 0)
            members = await self._guard("index", self.client.zrange(self._index(acct), 0, -1), [])
            keys = [m.decode() for m in members]
            doomed = [k for k in keys if key_matches(k, acct, prefixes)]
            if not doomed:
                continue
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(*(self._full(k) for k in doomed))
            pipe.zrem(self._index(acct), *doomed)
            await self._guard("purge", pipe.execute(), None)
            count += len(doomed)
        return count

    # -- fill lock (cross-replica single flight) ---------------------------------------------

    async def acquire(self, key: str) -> str | None:
        token = uuid.uuid4().hex
        ttl_ms = int(self.options.lock_ttl * 1000)
        got = await self._guard("lock", self.client.set(self._lock(key), token, nx=True, px=ttl_ms),
                                LOCAL_LOCK)  # fmt: skip
        # Redis down: fall back to in-process single flight rather than stalling.
        if got == LOCAL_LOCK:
            return LOCAL_LOCK
        return token if got else None

    async def release(self, key: str, token: str) -> None:
        if token != LOCAL_LOCK:
            await self._guard("unlock", self._release(keys=[self._lock(key)], args=[token]), 0)

    async def extend(self, key: str, token: str) -> None:
        if token != LOCAL_LOCK:
            ttl_ms = int(self.options.lock_ttl * 1000)
            await self._guard("extend", self._extend(keys=[self._lock(key)], args=[token, ttl_ms]),
                              0)  # fmt: skip

    async def locked(self, key: str) -> bool:
        return bool(await self._guard("locked", self.client.exists(self._lock(key)), 0))

    async def wait_fill(self, key: str, within: float) -> None:
        event = self._fill_events.setdefault(key, asyncio.Event())
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            if self._fill_events.get(key) is event and event.is_set():
                del self._fill_events[key]

    async def notify_fill(self, key: str) -> None:
        message = json.dumps({"t": "fill", "o": self.origin, "k": key})
        await self._guard("publish", self.client.publish(self._channel, message), 0)

    # -- the bus: invalidations and fill notices from every replica --------------------------

    async def _listen(self) -> None:
        delay = 0.05
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self.near.clear()  # whatever we missed while away is forgotten
                self._bus_up.set()
                delay = 0.05
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        await self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop the near tier, retry with backoff
                reraise_if_cancelling()
                self.log.warning("cache_bus_down", error=type(exc).__name__)
            finally:
                self._bus_up.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _on_message(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if message.get("t") == "fill":
            event = self._fill_events.pop(str(message.get("k")), None)
            if event is not None:
                event.set()
        elif message.get("t") == "inv":
            if message.get("o") != self.origin:  # the writer dropped its own copies already
                prefixes = message.get("p")
                await self.near.invalidate(message.get("a"), tuple(prefixes) if prefixes else None)
            if message.get("i"):
                ack = json.dumps({"t": "ack", "i": message["i"]})
                await self._guard("publish", self.client.publish(self._channel, ack), 0)
        elif message.get("t") == "ack":
            acks = self._acks.get(str(message.get("i")))
            if acks is not None:
                acks.received += 1
                acks.check()

    def bus_up(self) -> bool:
        return self._bus_up.is_set()

    # -- observability -----------------------------------------------------------------------

    async def stats(self) -> dict[str, TierStats]:
        out = {"memory": self.near.stats()}
        members = await self._guard("accounts", self.client.smembers(self._accounts), set())
        entries = size = 0
        for acct in sorted(m.decode() for m in members):
            keys = await self._guard("index", self.client.zrange(self._index(acct), 0, -1), [])
            if not keys:
                continue
            pipe = self.client.pipeline(transaction=False)
            for k in keys:
                pipe.strlen(self._full(k.decode()))
            lengths = await self._guard("strlen", pipe.execute(), [])
            live = [n for n in lengths if n]
            entries += len(live)
            size += sum(live)
        out["redis"] = TierStats(entries, size)
        return out

    async def ping(self) -> tuple[bool, str]:
        ok = bool(await self._guard("ping", self.client.ping(), False))
        return ok, "redis cache reachable" if ok else "redis cache unreachable"
