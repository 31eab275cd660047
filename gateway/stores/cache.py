"""Where cached replies live: a bounded memory tier, a shared Redis tier (``cache_redis``), or
both.

``CacheStore`` is the small interface the cache stage needs. Both tiers store through aiocache
(``SimpleMemoryCache``, ``RedisCache`` with our ``EnvelopeSerializer``); what aiocache 0.12.3
cannot do (a size bound, per-account indexes, a cross-process fill lock, pub/sub) is ours.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from aiocache import SimpleMemoryCache
from aiocache.serializers import NullSerializer

from gateway.core.cache_rules import key_matches
from gateway.stores.envelope import Entry

Prefixes = tuple[str, ...] | None  # None: every path
LOCAL_LOCK = "local"  # the lock token when there is nothing to exclude across processes


@dataclass(frozen=True, slots=True)
class TierStats:
    entries: int
    bytes: int


class CacheStore(Protocol):
    """What the cache stage needs from storage; every call degrades (miss/no-op) on failure."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def get(self, key: str, now: float) -> Entry | None: ...

    def get_near(self, key: str, now: float) -> Entry | None:
        """What ``get`` would answer from this process's memory, without any I/O or await;
        None when only the shared tier could tell."""
        ...

    async def put(self, key: str, entry: Entry, *, gen: int) -> bool: ...

    async def generation(self, account: str) -> int: ...

    async def invalidate(self, account: str | None, prefixes: Prefixes) -> int: ...

    async def acquire(self, key: str) -> str | None: ...

    async def release(self, key: str, token: str) -> None: ...

    async def extend(self, key: str, token: str) -> None: ...

    async def wait_fill(self, key: str, within: float) -> None: ...

    async def locked(self, key: str) -> bool: ...

    async def notify_fill(self, key: str) -> None: ...

    async def stats(self) -> dict[str, TierStats]: ...

    async def ping(self) -> tuple[bool, str]: ...


class MemoryTier:
    """aiocache's memory cache with the bound it lacks: LRU by entries and by bytes.

    Expiry is ours too (checked on read, bounded by LRU eviction), so there is no timer per key.
    """

    name = "memory"

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # timeout=None: no wait_for task per call; these calls never block.
        self._cache = SimpleMemoryCache(serializer=NullSerializer(), timeout=None)
        self._meta: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key → (size, expiry)
        self._gens: dict[str, int] = {}
        self._all_gen = 0  # bumped by a purge of every account
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._meta)

    async def get(self, key: str, now: float) -> Entry | None:
        meta = self._meta.get(key)
        if meta is not None and meta[1] <= now:
            await self.delete(key)
            return None
        return self.peek(key, now)

    def peek(self, key: str, now: float) -> Entry | None:
        """``get`` without the awaits, for the hit path: an expired entry is left to ``get``
        or eviction. aiocache's memory backend keeps entries in a dict (its ``_cache``), and
        its own read (``_get``) is a coroutine around ``dict.get``; the public ``get`` adds
        decorators that read the environment and time the call. Same storage, read directly
        (aiocache is pinned below 0.13; a unit test holds this to what ``get`` returns)."""
        meta = self._meta.get(key)
        if meta is None or meta[1] <= now:
            return None
        self._meta.move_to_end(key)
        entry: Entry | None = self._cache._cache.get(key)
        return entry

    async def put(self, key: str, entry: Entry, *, gen: int, expires: float | None = None) -> bool:
        account = key.split("|", 1)[0]
        if self._gens.get(account, 0) + self._all_gen != gen:
            return False  # a write to the account landed while this was being fetched
        size = entry.size + len(key)
        if size > self.max_bytes:
            return False
        self._forget(key)
        self._meta[key] = (size, entry.expires_at if expires is None else expires)
        self.bytes += size
        await self._cache.set(key, entry)
        while len(self._meta) > self.max_entries or self.bytes > self.max_bytes:
            old, (old_size, _) = self._meta.popitem(last=False)
            self.bytes -= old_size
            self.evictions += 1
            await self._cache.delete(old)
        return True

    def _forget(self, key: str) -> bool:
        meta = self._meta.pop(key, None)
        if meta is None:
            return False
        self.bytes -= meta[0]
        return True

    async def delete(self, key: str) -> None:
        if self._forget(key):
            await self._cache.delete(key)

    async def generation(self, account: str) -> int:
        return self._gens.get(account, 0) + self._all_gen

    def bump(self, account: str | None) -> None:
        if account is None:
            self._all_gen += 1
        else:
            self._gens[account] = self._gens.get(account, 0) + 1

    async def invalidate(self, account: str | None, prefixes: Prefixes) -> int:
        self.bump(account)
        if account is None and prefixes is None:
            count = len(self._meta)
            await self.clear()
            return count
        doomed = [k for k in self._meta if key_matches(k, account, prefixes)]
        for key in doomed:
            await self.delete(key)
        return len(doomed)

    async def clear(self) -> None:
        self._meta.clear()
        self.bytes = 0
        await self._cache.clear()

    def stats(self) -> TierStats:
        return TierStats(len(self._meta), self.bytes)


class MemoryStore:
    """The default store: one process, one bounded memory tier; locks are in-process only."""

    def __init__(self, tier: MemoryTier) -> None:
        self.tier = tier
        self.get_near = tier.peek  # the tier's own method: hits read here

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.tier.clear()

    async def get(self, key: str, now: float) -> Entry | None:
        return await self.tier.get(key, now)

    async def put(self, key: str, entry: Entry, *, gen: int) -> bool:
        return await self.tier.put(key, entry, gen=gen)

    async def generation(self, account: str) -> int:
        return await self.tier.generation(account)

    async def invalidate(self, account: str | None, prefixes: Prefixes) -> int:
        return await self.tier.invalidate(account, prefixes)

    async def acquire(self, key: str) -> str | None:
        return LOCAL_LOCK  # the stage's in-flight map already makes one fill per key

    async def release(self, key: str, token: str) -> None:
        return None

    async def extend(self, key: str, token: str) -> None:
        return None

    async def wait_fill(self, key: str, within: float) -> None:
        return None

    async def locked(self, key: str) -> bool:
        return False

    async def notify_fill(self, key: str) -> None:
        return None

    async def stats(self) -> dict[str, TierStats]:
        return {"memory": self.tier.stats()}

    async def ping(self) -> tuple[bool, str]:
        return True, "memory"
