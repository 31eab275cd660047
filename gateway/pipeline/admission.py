"""The admission stage: every request to Harvest waits for a quota slot; none ever sees a 429.

Per account, requests that share a set of limits form a *lane*. Each arrival reserves one slot
(the earliest the store can give); slots of a lane are interchangeable, so the lane's fair queue
(priority class, then round-robin over callers) decides who uses the next slot that comes due.
A caller whose turn would come after its deadline is answered 503 at once, with the slot it
would have had as ``Retry-After``. An upstream 429 blocks the account in the store (for every
replica), re-slots the account's queued requests behind the block, and retries the request.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.clock import Clock
from gateway.core.fairness import DEFAULT_PRIORITY, FairQueue, Ticket, parse_priority, unserved
from gateway.core.quota import Limit, blamed, parse_retry_after
from gateway.core.routes import Upstream
from gateway.errors import GatewayError, bad_request, quota_exhausted, upstream_rate_limited
from gateway.model import CallNext, Exchange, Reply
from gateway.policy.schema import Policy
from gateway.stores.quota import QuotaStore
from gateway.telemetry.metrics import Metrics

MAX_WAIT_HEADER = "X-Gateway-Max-Wait"
PRIORITY_HEADER = "X-Gateway-Priority"


@dataclass(eq=False, slots=True)
class Waiter:
    caller: str
    priority: str
    deadline: float  # monotonic: past this, the caller gets 503 instead of a slot
    max_wait: float
    ticket: Ticket
    future: asyncio.Future[str]  # resolves to the member (slot id) it was granted
    retries: int = 0


@dataclass(eq=False)
class Lane:
    account: str
    limits: tuple[Limit, ...]
    queue: FairQueue[Waiter] = field(default_factory=FairQueue)
    slots: list[tuple[float, str]] = field(default_factory=list)  # (local time, member), sorted
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return "+".join(x.name for x in self.limits)


class Admission:
    def __init__(
        self,
        *,
        policy: Policy,
        store: QuotaStore,
        clock: Clock,
        metrics: Metrics,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.policy = policy
        self.rules = policy.queue
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.log = log
        self.all_limits = tuple(Limit(q.name, q.limit, q.window) for q in policy.quotas)
        self.lanes: dict[tuple[str, tuple[str, ...]], Lane] = {}
        self.blocked: dict[str, float] = {}  # account → local monotonic end of a 429 block
        self.seen: dict[str, float] = {}  # account → last request (for the status page)
        self.queued = 0
        self.closing = False
        self._ids = itertools.count()
        self._replica = uuid.uuid4().hex[:8]
        self._chores: set[asyncio.Task[Any]] = set()
        self._limits: dict[tuple[str, str, str], tuple[Limit, ...]] = {}

    # ---- the stage ---------------------------------------------------------------------

    async def __call__(self, exchange: Exchange, call_next: CallNext) -> Reply:
        account = exchange.account_id
        if account is None or exchange.route.upstream is not Upstream.API:
            # Harvest ID's endpoints have no account quota
            return await self._unmetered(exchange, call_next)
        priority, max_wait = self._caller_options(exchange)
        limits = self.limits_for(exchange.method, exchange.route.template, priority)
        if not limits:
            return await self._unmetered(exchange, call_next)
        lane = self._lane(account, limits)
        started = self.clock.monotonic()
        self.seen[account] = started
        waiter = self._waiter(lane, exchange.principal or "anonymous", priority, max_wait)
        try:
            while True:
                member = await self._acquire(lane, waiter)
                wait = self.clock.monotonic() - started
                exchange.notes["queue_wait_ms"] = round(wait * 1000, 1)
                try:
                    reply = await call_next(exchange)
                finally:
                    # answered (or failed): it reached Harvest by now, if at all
                    self._chore(self.store.settle(lane.account, lane.limits, member))
                if reply.status != 429:
                    self.metrics.quota_wait.labels(lane.name).observe(wait)
                    return reply
                await self._absorb_429(lane, waiter, reply, exchange)
        except GatewayError as exc:  # a 503 says how long it waited, like every answer
            waited = round((self.clock.monotonic() - started) * 1000, 1)
            exc.headers.setdefault("X-Gateway-Queue-Wait", str(waited))
            raise
        finally:
            self._forget_old_accounts()
            if self.blocked:
                self._update_blocked_gauge()

    async def _unmetered(self, exchange: Exchange, call_next: CallNext) -> Reply:
        """Sent without a quota slot; a 429 still never reaches the caller (there is no queue
        to wait in here): it becomes a 503 saying when to come back."""
        reply = await call_next(exchange)
        if reply.status != 429:
            return reply
        await reply.read()  # frees the upstream connection
        self.metrics.rejections.labels("upstream_rate_limited").inc()
        raise upstream_rate_limited(
            reply.headers.get("Retry-After"), self.clock.wall(), self.rules.default_penalty
        )

    def limits_for(self, method: str, template: str, priority: str) -> tuple[Limit, ...]:
        which = (method, template, priority)  # templates and priorities are bounded sets
        found = self._limits.get(which)
        if found is None:
            found = self._limits[which] = tuple(
                Limit(q.name, q.limit, q.window)
                for q in self.policy.quotas
                if q.applies(method, template, priority)
            )
        return found

    def _caller_options(self, exchange: Exchange) -> tuple[str, float]:
        headers = exchange.caller_headers
        try:
            priority = parse_priority(headers.get(PRIORITY_HEADER)) or DEFAULT_PRIORITY
        except ValueError as exc:
            raise bad_request("invalid_priority", f"{exc}.") from exc
        max_wait = self.rules.max_wait
        given = headers.get(MAX_WAIT_HEADER)
        if given is not None:
            try:
                asked = float(given)
            except ValueError:
                asked = math.nan
            if not math.isfinite(asked) or asked < 0:
                raise bad_request(
                    "invalid_max_wait", f"{MAX_WAIT_HEADER} must be a number of seconds ≥ 0."
                )
            max_wait = min(max_wait, asked)
        return priority, max_wait

    def _lane(self, account: str, limits: tuple[Limit, ...]) -> Lane:
        key = (account, tuple(x.name for x in limits))
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = Lane(account, limits)
        return lane

    def _waiter(self, lane: Lane, caller: str, priority: str, max_wait: float) -> Waiter:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        return Waiter(
            caller=caller,
            priority=priority,
            deadline=self.clock.monotonic() + max_wait,
            max_wait=max_wait,
            ticket=lane.queue.ticket(caller, priority),
            future=future,
        )

    # ---- queueing ----------------------------------------------------------------------

    async def _acquire(self, lane: Lane, waiter: Waiter) -> str:
        if self.closing:
            raise _shutting_down()
        if self.queued >= self.rules.max_queue:
            self.metrics.reservations.labels("rejected").inc()
            raise quota_exhausted(
                "The gateway's queue is full; try again shortly.",
                retry_after=min(x.window for x in lane.limits),
                reason="queue_full",
            )
        if waiter.future.done():
            waiter.future = asyncio.get_running_loop().create_future()
        lane.queue.push(waiter.ticket, waiter)  # before any await: the lane stays alive
        self.queued += 1
        self.metrics.queue_depth.set(self.queued)
        try:
            async with lane.lock:
                await self._fill(lane)
            self._wake(lane)
            member = await waiter.future
            self.metrics.reservations.labels("granted").inc()
            return member
        except asyncio.CancelledError:
            self._abandon(lane, waiter)
            raise
        finally:
            self.queued -= 1
            self.metrics.queue_depth.set(self.queued)

    async def _fill(self, lane: Lane) -> None:
        """Reserve until every queued waiter has a slot, then answer those who cannot make it."""
        refused: float | None = None
        while len(lane.slots) < len(lane.queue):
            horizon = max(w.deadline for w in lane.queue.items()) - self.clock.monotonic()
            member = f"{self._replica}:{next(self._ids)}"
            res = await self.store.reserve(lane.account, lane.limits, member, max(horizon, 0.0))
            for x, used in zip(lane.limits, res.used, strict=False):
                self.metrics.quota_utilisation.labels(x.name).set(used / x.limit)
            if not res.admitted:
                refused = res.wait
                break
            bisect.insort(lane.slots, (self.clock.monotonic() + res.wait, member))
        await self._reconcile(lane, refused)

    async def _reconcile(self, lane: Lane, refused: float | None) -> None:
        now = self.clock.monotonic()
        while True:
            waiters = lane.queue.items()
            times = [t for t, _ in lane.slots]
            i = unserved(times, [w.deadline for w in waiters])
            if i is None:
                break
            waiter = waiters[i]
            lane.queue.remove(waiter)
            after = times[i] - now if i < len(times) else (refused or lane.limits[0].window)
            self.metrics.reservations.labels("rejected").inc()
            if not waiter.future.done():
                waiter.future.set_exception(
                    quota_exhausted(
                        f"No quota slot for account {lane.account} within "
                        f"{waiter.max_wait:g}s (the next is in {after:.1f}s).",
                        retry_after=after,
                        reason="max_wait",
                        quota=lane.name,
                    )
                )
        while len(lane.slots) > len(lane.queue):
            _, member = lane.slots.pop()  # the latest: earlier slots serve those still queued
            await self._release(lane, member)

    def _abandon(self, lane: Lane, waiter: Waiter) -> None:
        """The caller went away while queued: drop it and hand back the latest slot."""
        if lane.queue.remove(waiter) and len(lane.slots) > len(lane.queue):
            _, member = lane.slots.pop()
            self._chore(self._release(lane, member))
        self._wake(lane)

    async def _release(self, lane: Lane, member: str) -> None:
        self.metrics.reservations.labels("released").inc()
        await self.store.release(lane.account, lane.limits, member)

    # ---- the dispatcher: hands due slots to the fairest waiter -------------------------

    def _wake(self, lane: Lane) -> None:
        lane.changed.set()
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._dispatch(lane), name=f"quota-lane-{lane.name}")

    async def _dispatch(self, lane: Lane) -> None:
        while True:
            if not lane.queue:
                if not lane.slots:
                    self.lanes.pop((lane.account, tuple(x.name for x in lane.limits)), None)
                return
            if not lane.slots:
                async with lane.lock:
                    await self._fill(lane)
                continue
            due, member = lane.slots[0]
            now = self.clock.monotonic()
            if due > now:
                lane.changed.clear()
                await self._sleep_or_change(lane, due - now)
                continue
            # Take the slot and the fairest waiter together (no await in between), then claim
            # without the lane lock: a burst of arrivals reserving must not delay a due send.
            lane.slots.pop(0)
            ticket, waiter = lane.queue.pop()
            verdict = await self.store.claim(lane.account, lane.limits, member)
            if verdict == 0:
                if not waiter.future.done():
                    waiter.future.set_result(member)
                else:  # claimed but the caller left: nothing will be sent
                    self._chore(self.store.settle(lane.account, lane.limits, member))
                continue
            if waiter.future.done():  # the caller left meanwhile: nobody needs a slot
                if verdict is not None:
                    await self._release(lane, member)
                continue
            lane.queue.push(ticket, waiter)
            if verdict is None:  # a 429 block took the slot: reserve again, behind it
                self.metrics.reservations.labels("reslotted").inc()
                async with lane.lock:
                    await self._fill(lane)
            else:  # an earlier send went out late: this one waits until the window allows
                self.metrics.reservations.labels("delayed").inc()
                bisect.insort(lane.slots, (self.clock.monotonic() + verdict, member))

    async def _sleep_or_change(self, lane: Lane, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        changed = asyncio.ensure_future(lane.changed.wait())
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            changed.cancel()

    # ---- upstream 429 ------------------------------------------------------------------

    async def _absorb_429(
        self, lane: Lane, waiter: Waiter, reply: Reply, exchange: Exchange
    ) -> None:
        retry_after = parse_retry_after(reply.headers.get("Retry-After"), self.clock.wall())
        await reply.read()  # frees the upstream connection
        blocked_for = await self.block(lane.account, retry_after, blamed(lane.limits))
        waiter.retries += 1
        self.metrics.reservations.labels("retried").inc()
        self.log.warning(
            "upstream_429_absorbed",
            request_id=exchange.request_id,
            account_id=lane.account,
            retry_after=retry_after,
            blocked_for=round(blocked_for, 3),
            attempt=waiter.retries,
        )
        if waiter.retries > self.rules.max_retries:
            raise quota_exhausted(
                f"Harvest kept answering 429 for account {lane.account} "
                f"({waiter.retries} tries); try again later.",
                retry_after=blocked_for,
                reason="upstream_rate_limited",
            )
        # It keeps its place in line (same ticket) and its deadline: the caller's maximum wait
        # counts from its arrival, so a block longer than what is left of it ends in a 503
        # with the block's Retry-After, not in a wait the caller never agreed to.

    async def block(
        self, account: str, retry_after: float | None, limits: Sequence[Limit] | None = None
    ) -> float:
        """Block ``limits`` of the account (all of them by default) on every replica, and move
        this replica's queued slots that need them behind the block."""
        limits = self.all_limits if limits is None else tuple(limits)
        seconds = await self.store.block(account, limits, retry_after, self.rules.default_penalty)
        until = self.clock.monotonic() + seconds
        self.blocked[account] = max(self.blocked.get(account, 0.0), until)
        self._update_blocked_gauge()
        names = {x.name for x in limits}
        for lane in [x for x in self.lanes.values() if x.account == account]:
            if names.isdisjoint(x.name for x in lane.limits):
                continue  # e.g. a report's block: the general lane goes on
            async with lane.lock:
                # slots inside the block are void: give them back, reserve behind the block
                void = [m for t, m in lane.slots if t < until]
                lane.slots = [(t, m) for t, m in lane.slots if t >= until]
                for member in void:
                    await self.store.release(lane.account, lane.limits, member)
                self.metrics.reservations.labels("reslotted").inc(len(void))
                await self._fill(lane)
            self._wake(lane)
        return seconds

    def _update_blocked_gauge(self) -> None:
        now = self.clock.monotonic()
        for account in [a for a, t in self.blocked.items() if t <= now]:
            del self.blocked[account]
        self.metrics.blocked_accounts.set(len(self.blocked))

    # ---- shutdown, status, housekeeping ------------------------------------------------

    async def close(self) -> None:
        """Stop admitting; answer every queued caller 503; give back their unsent slots."""
        self.closing = True
        for lane in list(self.lanes.values()):
            if lane.task is not None:
                lane.task.cancel()
            for waiter in lane.queue.items():
                lane.queue.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_exception(_shutting_down())
            slots, lane.slots = lane.slots, []
            for _, member in slots:
                with contextlib.suppress(Exception):
                    await self._release(lane, member)
        for task in [lane.task for lane in self.lanes.values() if lane.task]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._chores:  # let settles and releases reach the store: other replicas count them
            await asyncio.wait(set(self._chores), timeout=2.0)
        for task in list(self._chores):
            task.cancel()

    async def snapshot(self) -> dict[str, Any]:
        """Each account's use, queue and block, for ``GET /_gateway/quota``."""
        self._update_blocked_gauge()
        now = self.clock.monotonic()
        accounts: dict[str, Any] = {}
        for account in sorted(self.seen):
            status = await self.store.status(account, self.all_limits)
            lanes = [x for x in self.lanes.values() if x.account == account]
            accounts[account] = {
                "blocked_for": round(status.blocked_for, 3),
                "quotas": {
                    s.name: {
                        "limit": s.limit,
                        "window": s.window,
                        "used": s.used,
                        "reserved": s.reserved,
                        "utilisation": round(s.used / s.limit, 3),
                    }
                    for s in status.limits
                },
                "queue": {
                    x.name: {
                        "waiting": len(x.queue),
                        "slots_held": len(x.slots),
                        "next_slot_in": round(max(0.0, x.slots[0][0] - now), 3)
                        if x.slots
                        else None,
                    }
                    for x in lanes
                },
            }
        return {
            "margin": self.rules.margin,
            "max_wait": self.rules.max_wait,
            "queued": self.queued,
            "accounts": accounts,
        }

    def _forget_old_accounts(self) -> None:
        # Bounded memory: the status page lists accounts seen in the last hour, at most 1,000.
        if len(self.seen) <= 1000:
            return
        cutoff = self.clock.monotonic() - 3600
        for account in sorted(self.seen, key=self.seen.__getitem__)[: len(self.seen) - 1000]:
            del self.seen[account]
        for account in [a for a, t in self.seen.items() if t < cutoff]:
            del self.seen[account]

    def _chore(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)


def _shutting_down() -> GatewayError:
    return quota_exhausted(
        "The gateway is shutting down; retry on another replica.",
        retry_after=1.0,
        reason="shutting_down",
    )
