"""The quota schedule shared by every replica through Redis: one Lua script per decision.

Keys are hash-tagged per account (``hgw:{<account>}:<limit>`` ZSETs of reserved send times,
``hgw:{<account>}:<limit>:blocked`` 429 blocks), so every script touches one Redis Cluster
slot. Times are integer microseconds of Redis's own clock (``TIME``): replicas never compare
their clocks. The reserve script mirrors ``gateway.core.quota.earliest_slot`` step for step
(tested differentially).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from gateway.core.quota import Limit
from gateway.stores.quota import (
    CLAIM_POLL,
    MAX_FLIGHT,
    AccountStatus,
    LimitStatus,
    Reservation,
)
from gateway.stores.redis_retry import reconnect_once

US = 1_000_000

# The clock: Redis TIME unless a test pins ``now`` (ARGV) for differential checks.
_NOW = """
local function fmt(x) return string.format('%.0f', x) end
local function clock(arg)
  local now = tonumber(arg)
  if now > 0 then return now end
  local tm = redis.call('TIME')
  return tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
"""

# The latest block among KEYS[first .. first + n - 1] (0 when none).
_BLOCKED = """
local function blocked_until(first, n)
  local latest = 0
  for i = first, first + n - 1 do
    local b = tonumber(redis.call('GET', KEYS[i]) or '0')
    if b > latest then latest = b end
  end
  return latest
end
"""

# KEYS: one ZSET per limit, then one blocked key per limit.
# ARGV: member, max_wait_us, now_us (0 = TIME), then limit, window_us (margin included) per ZSET.
RESERVE = (
    _NOW
    + _BLOCKED
    + """
local n = #KEYS / 2
local now = clock(ARGV[3])
local lower = now
local blocked = blocked_until(n + 1, n)
if blocked > lower then lower = blocked end
local lims = {}
for i = 1, n do
  local cap, w = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. fmt(now - w))
  -- entries at or before lower - W cannot push the slot (core: the bisect start)
  local raw = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. fmt(lower - w), '+inf', 'WITHSCORES')
  local s = {}
  for j = 2, #raw, 2 do s[#s + 1] = tonumber(raw[j]) end
  lims[i] = {n = cap, w = w, s = s}
end
local t = lower
local moved = true
while moved do
  moved = false
  for i = 1, n do
    local L = lims[i]
    for j = 1, #L.s - L.n + 1 do
      local first, last = L.s[j], L.s[j + L.n - 1]
      if first + L.w > t and last - first < L.w then
        if t <= last - L.w then break end
        if t < first + L.w then t = first + L.w; moved = true end
      end
    end
  end
end
local out = {0, fmt(t - now), fmt(now)}
for i = 1, n do
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. fmt(now - lims[i].w), fmt(now))
end
if t - now > tonumber(ARGV[2]) then return out end
out[1] = 1
for i = 1, n do
  redis.call('ZADD', KEYS[i], fmt(t), ARGV[1])
  -- the TTL must outlive the latest queued slot, not just this one
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[i], math.ceil((tonumber(last[2]) - now + lims[i].w) / 1000) + 1000)
end
return out
"""
)

# KEYS: n schedule ZSETs, n blocked keys, n settled ZSETs, n in-flight ZSETs.
# ARGV: member, now_us, poll_us, max_flight_us, then limit, window_us (no margin) per limit.
# {1} = send now (in flight from now); {2, delay_us} = wait, earlier requests reached Harvest
# later than planned; {0} = slot gone or account blocked (dropped): reserve again.
# Mirrors InProcessQuotaStore.claim and gateway.core.quota.claim_delay.
CLAIM = (
    _NOW
    + _BLOCKED
    + """
local n = #KEYS / 4
local now = clock(ARGV[2])
local blocked = blocked_until(n + 1, n)
if (not redis.call('ZSCORE', KEYS[1], ARGV[1])) or blocked > now then
  for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[1]) end
  return {0, '0'}
end
local delay = 0
for i = 1, n do
  local cap, w = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local settled, flight = KEYS[2 * n + i], KEYS[3 * n + i]
  redis.call('ZREMRANGEBYSCORE', flight, '-inf', '(' .. fmt(now - tonumber(ARGV[4])))
  local raw = redis.call('ZRANGEBYSCORE', settled, '(' .. fmt(now - w), fmt(now), 'WITHSCORES')
  local s = {}
  for j = 2, #raw, 2 do s[#s + 1] = tonumber(raw[j]) end
  local excess = #s + redis.call('ZCARD', flight) - cap + 1
  if excess > 0 then
    local d = tonumber(ARGV[3])
    if excess <= #s then d = s[excess] + w - now end
    if d > delay then delay = d end
  end
end
if delay > 0 then return {2, fmt(delay)} end
for i = 1, n do
  local ttl = math.ceil(tonumber(ARGV[4]) / 1000) + 1000
  redis.call('ZADD', KEYS[i], 'XX', fmt(now), ARGV[1])
  redis.call('ZADD', KEYS[3 * n + i], fmt(now), ARGV[1])
  redis.call('PEXPIRE', KEYS[3 * n + i], ttl)
end
return {1, '0'}
"""
)

# KEYS: n schedule ZSETs, n settled ZSETs, n in-flight ZSETs. ARGV: member, now_us, then
# window_us (margin included) per limit.
SETTLE = (
    _NOW
    + """
local n = #KEYS / 3
local now = clock(ARGV[2])
for i = 1, n do
  if redis.call('ZREM', KEYS[2 * n + i], ARGV[1]) == 1 then
    local w = tonumber(ARGV[2 + i])
    redis.call('ZADD', KEYS[i], 'XX', fmt(now), ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', '(' .. fmt(now - w))
    redis.call('ZADD', KEYS[n + i], fmt(now), ARGV[1])
    redis.call('PEXPIRE', KEYS[n + i], math.ceil(w / 1000) + 1000)
  end
end
return 1
"""
)

# KEYS: ZSETs, then their blocked keys. ARGV: block_us, now_us. Returns the block left, in
# microseconds (never shorter than one already on any of the limits).
BLOCK = (
    _NOW
    + _BLOCKED
    + """
local n = #KEYS / 2
local now = clock(ARGV[2])
local upto = now + tonumber(ARGV[1])
local cur = blocked_until(n + 1, n)
if cur > upto then upto = cur end
for i = 1, n do
  redis.call('SET', KEYS[n + i], fmt(upto), 'PX', math.ceil((upto - now) / 1000) + 1000)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '(' .. fmt(now), '(' .. fmt(upto))
end
return fmt(upto - now)
"""
)

# KEYS: ZSETs, then their blocked keys. ARGV: now_us, then window_us per ZSET.
STATUS = (
    _NOW
    + _BLOCKED
    + """
local n = #KEYS / 2
local now = clock(ARGV[1])
local out = {fmt(now), fmt(blocked_until(n + 1, n))}
for i = 1, n do
  local w = tonumber(ARGV[1 + i])
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. fmt(now - w), fmt(now))
  out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. fmt(now), '+inf')
end
return out
"""
)

# KEYS: one schedule ZSET, its blocked key, its settled ZSET. ARGV: window_us, blocked_until_us,
# count of schedule pairs, then score, member pairs (schedule first, then settled).
RESTORE = (
    _NOW
    + """
local now = clock('0')
local w = tonumber(ARGV[1])
local k = tonumber(ARGV[3])
for j = 4, #ARGV, 2 do
  local key = KEYS[1]
  if j >= 4 + 2 * k then key = KEYS[3] end
  if tonumber(ARGV[j]) > now - w then redis.call('ZADD', key, 'NX', ARGV[j], ARGV[j + 1]) end
end
for _, key in ipairs({KEYS[1], KEYS[3]}) do
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now + w) / 1000) + 1000)
  end
end
local upto = tonumber(ARGV[2])
if upto > now and upto > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], fmt(upto), 'PX', math.ceil((upto - now) / 1000) + 1000)
end
return fmt(now)
"""
)


def connect(url: str, timeout: float = 0.25) -> aioredis.Redis:
    """A client that fails fast: the caller falls back instead of waiting on a dead Redis
    (only a broken pooled connection is retried, see ``redis_retry``)."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=reconnect_once(),
        decode_responses=True,
    )
    return client


def _us(seconds: float) -> int:
    return round(seconds * US)


class RedisQuotaStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        margin: float = 0.0,
        prefix: str = "hgw",
        now_us: Callable[[], int] | None = None,  # tests only: pin the scripts' clock
    ) -> None:
        self.client = client
        self.margin = margin
        self.prefix = prefix
        self._now_us = now_us
        self._reserve = client.register_script(RESERVE)
        self._claim = client.register_script(CLAIM)
        self._settle = client.register_script(SETTLE)
        self._block = client.register_script(BLOCK)
        self._status = client.register_script(STATUS)
        self._restore = client.register_script(RESTORE)

    def _keys(self, account: str, limits: Sequence[Limit]) -> list[str]:
        """The limits' schedule ZSETs, then their blocked keys."""
        schedules = [f"{self.prefix}:{{{account}}}:{x.name}" for x in limits]
        return schedules + [f"{k}:blocked" for k in schedules]

    def _now(self) -> int:
        return self._now_us() if self._now_us else 0

    def _window_us(self, x: Limit) -> int:
        return _us(x.window + self.margin)

    async def reserve(
        self, account: str, limits: Sequence[Limit], member: str, max_wait: float
    ) -> Reservation:
        args: list[Any] = [member, _us(max_wait), self._now()]
        for x in limits:
            args += [x.limit, self._window_us(x)]
        out = await self._reserve(keys=self._keys(account, limits), args=args)
        return Reservation(
            admitted=int(out[0]) == 1,
            wait=int(out[1]) / US,
            used=tuple(int(u) for u in out[3:]),
            store_now=int(out[2]) / US,
        )

    def _traffic_keys(self, account: str, limits: Sequence[Limit]) -> tuple[list[str], ...]:
        schedule = self._keys(account, limits)[: len(limits)]
        return schedule, [f"{k}:settled" for k in schedule], [f"{k}:flight" for k in schedule]

    async def claim(self, account: str, limits: Sequence[Limit], member: str) -> float | None:
        if not limits:
            return 0.0
        args: list[Any] = [member, self._now(), _us(CLAIM_POLL), _us(MAX_FLIGHT)]
        for x in limits:
            args += [x.limit, _us(x.window)]
        _, settled, flight = self._traffic_keys(account, limits)
        keys = [*self._keys(account, limits), *settled, *flight]
        code, delay = await self._claim(keys=keys, args=args)
        if int(code) == 0:
            return None
        return int(delay) / US

    async def settle(self, account: str, limits: Sequence[Limit], member: str) -> None:
        schedule, settled, flight = self._traffic_keys(account, limits)
        args: list[Any] = [member, self._now(), *(self._window_us(x) for x in limits)]
        await self._settle(keys=[*schedule, *settled, *flight], args=args)

    async def release(self, account: str, limits: Sequence[Limit], member: str) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in self._keys(account, limits)[: len(limits)]:
                pipe.zrem(key, member)
            await pipe.execute()

    async def block(
        self, account: str, limits: Sequence[Limit], retry_after: float | None, penalty: float
    ) -> float:
        seconds = penalty if retry_after is None else max(retry_after, 0.0)
        out = await self._block(keys=self._keys(account, limits), args=[_us(seconds), self._now()])
        return int(out) / US

    async def status(self, account: str, limits: Sequence[Limit]) -> AccountStatus:
        args = [self._now(), *(self._window_us(x) for x in limits)]
        out = await self._status(keys=self._keys(account, limits), args=args)
        now, blocked = int(out[0]), int(out[1])
        rows = tuple(
            LimitStatus(x.name, x.limit, x.window, int(out[2 + 2 * i]), int(out[3 + 2 * i]))
            for i, x in enumerate(limits)
        )
        return AccountStatus(rows, max(0.0, (blocked - now) / US))

    async def restore(
        self,
        account: str,
        limit: Limit,
        entries: Sequence[tuple[float, str]],
        settled: Sequence[tuple[float, str]],
        blocked_until: float,
    ) -> None:
        """Put slots and sends known to one replica back after Redis lost them (Redis seconds);
        requests in flight meanwhile are written as settled: they have left by now."""
        args: list[Any] = [self._window_us(limit), _us(blocked_until), len(entries)]
        for t, member in [*entries, *settled]:
            args += [_us(t), member]
        keys = self._keys(account, [limit])
        await self._restore(keys=[*keys, f"{keys[0]}:settled"], args=args)

    async def redis_time(self) -> float:
        sec, usec = await self.client.time()
        return int(sec) + int(usec) / US

    async def aclose(self) -> None:
        await self.client.aclose()
