"""Redis when it answers, a per-replica share of the quota when it does not.

Every slot Redis grants is also noted in a local in-process store, so a replica that loses
Redis keeps respecting what it already reserved, and its new reservations use ``share`` of each
limit (so the replicas together stay near the limit). A probe task pings Redis; on recovery the
local log (and any 429 block) is written back before Redis is trusted again, so a restarted,
empty Redis does not forget the sends of the last window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import redis.exceptions
import structlog

from gateway.clock import Clock
from gateway.core.quota import Limit
from gateway.stores.quota import AccountStatus, InProcessQuotaStore, Reservation
from gateway.stores.quota_redis import RedisQuotaStore
from gateway.tasks import cancel_all, reraise_if_cancelling
from gateway.telemetry.metrics import Metrics

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class FailoverQuotaStore:
    def __init__(
        self,
        primary: RedisQuotaStore,
        *,
        clock: Clock,
        metrics: Metrics,
        log: structlog.typing.FilteringBoundLogger,
        all_limits: Sequence[Limit],
        share: float,
        probe_interval: float = 0.5,
    ) -> None:
        self.primary = primary
        self.local = InProcessQuotaStore(clock, primary.margin)
        self.clock = clock
        self.metrics = metrics
        self.log = log
        self.all_limits = tuple(all_limits)
        self.share = share
        self.probe_interval = probe_interval
        self.degraded = False
        self.since: float | None = None
        self._offset: float | None = None  # Redis seconds minus local monotonic seconds
        self._probe: asyncio.Task[None] | None = None

    # ---- lifecycle and health -------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._sync_clock()
        except REDIS_DOWN as exc:
            self._degrade(exc)
        self._probe = asyncio.create_task(self._probe_loop(), name="quota-redis-probe")

    async def aclose(self) -> None:
        if self._probe is not None:
            await cancel_all([self._probe])
        with contextlib.suppress(*REDIS_DOWN):
            await self.primary.aclose()

    def health(self) -> tuple[bool, str]:
        if self.degraded:
            return False, f"redis unreachable: in-process fallback at {self.share:g} of each quota"
        return True, "redis"

    def _degrade(self, exc: BaseException) -> None:
        """Called from every ``except REDIS_DOWN``: a cancel redis-py reported as a connection
        error is not Redis failing, so it goes on as the cancellation it is."""
        reraise_if_cancelling()
        if not self.degraded:
            self.degraded = True
            self.since = self.clock.monotonic()
            self.metrics.redis_up.set(0)
            self.metrics.degraded.labels("quota").set(1)
            self.log.warning("quota_store_degraded", error=f"{type(exc).__name__}: {exc}")

    async def _sync_clock(self) -> None:
        self._offset = await self.primary.redis_time() - self.clock.monotonic()

    async def _probe_loop(self) -> None:
        while True:
            await self.clock.sleep(self.probe_interval)
            try:
                if self.degraded:
                    await self._recover()
                else:  # notice a dead Redis even while idle, so /readyz tells the truth
                    await self.primary.client.ping()
            except REDIS_DOWN as exc:
                self._degrade(exc)

    async def _recover(self) -> None:
        await self._sync_clock()
        await self._write_back()
        # Readiness and the gauges change together: /readyz never says ready while
        # redis_up still says down.
        self.degraded = False
        self.metrics.redis_up.set(1)
        self.metrics.degraded.labels("quota").set(0)
        # slots granted locally while the write-back ran: write them too (idempotent)
        await self._write_back()
        down = self.clock.monotonic() - (self.since or self.clock.monotonic())
        self.log.info("quota_store_recovered", degraded_seconds=round(down, 3))

    async def _write_back(self) -> None:
        assert self._offset is not None
        now = self.clock.monotonic()
        for account in self.local.accounts():
            for limit in self.all_limits:
                blocked = self.local.blocked_until(account, [limit])
                off = self._offset
                entries = [(t + off, m) for t, m in self.local.entries(account, limit.name)]
                sent = self.local.settled_entries(account, limit.name)
                sent += [(now, m) for m in self.local.in_flight(account, limit.name)]
                settled = [(t + off, m) for t, m in sent]
                until = blocked + off if blocked else 0.0
                if entries or settled or until:
                    await self.primary.restore(account, limit, entries, settled, until)

    def _scaled(self, limits: Sequence[Limit]) -> list[Limit]:
        return [Limit(x.name, max(1, int(x.limit * self.share)), x.window) for x in limits]

    # ---- the QuotaStore port -------------------------------------------------------------

    async def reserve(
        self, account: str, limits: Sequence[Limit], member: str, max_wait: float
    ) -> Reservation:
        if not self.degraded:
            try:
                res = await self.primary.reserve(account, limits, member, max_wait)
            except REDIS_DOWN as exc:
                self._degrade(exc)
            else:
                if res.admitted:
                    self.local.record(account, limits, member, res.wait)
                if res.store_now is not None:
                    self._offset = res.store_now - self.clock.monotonic()
                return res
        return await self.local.reserve(account, self._scaled(limits), member, max_wait)

    async def claim(self, account: str, limits: Sequence[Limit], member: str) -> float | None:
        if not self.degraded:
            try:
                verdict = await self.primary.claim(account, limits, member)
            except REDIS_DOWN as exc:
                self._degrade(exc)
            else:
                if verdict is None:
                    await self.local.release(account, limits, member)
                elif verdict == 0:
                    self.local.mark_sent(account, limits, member)
                return verdict
        return await self.local.claim(account, self._scaled(limits), member)

    async def settle(self, account: str, limits: Sequence[Limit], member: str) -> None:
        await self.local.settle(account, limits, member)
        if not self.degraded:
            try:
                await self.primary.settle(account, limits, member)
            except REDIS_DOWN as exc:
                self._degrade(exc)

    async def release(self, account: str, limits: Sequence[Limit], member: str) -> None:
        await self.local.release(account, limits, member)
        if not self.degraded:
            try:
                await self.primary.release(account, limits, member)
            except REDIS_DOWN as exc:
                self._degrade(exc)

    async def block(
        self, account: str, limits: Sequence[Limit], retry_after: float | None, penalty: float
    ) -> float:
        seconds = await self.local.block(account, limits, retry_after, penalty)
        if not self.degraded:
            try:
                seconds = await self.primary.block(account, limits, retry_after, penalty)
            except REDIS_DOWN as exc:
                self._degrade(exc)
            else:
                self.local.set_block(account, limits, self.clock.monotonic() + seconds)
        return seconds

    async def status(self, account: str, limits: Sequence[Limit]) -> AccountStatus:
        if not self.degraded:
            try:
                return await self.primary.status(account, limits)
            except REDIS_DOWN as exc:
                self._degrade(exc)
        return await self.local.status(account, self._scaled(limits))
