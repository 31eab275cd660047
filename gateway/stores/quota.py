"""Where quota schedules live: the ``QuotaStore`` port and its in-process implementation.

A store keeps, per account and limit, the log of reserved send times and a blocked-until time
(a 429 blocks the limits it is blamed on; a request waits for every block among its limits).
All decisions are ``gateway.core.quota``'s; a store adds state and a clock. Times cross the
port as *waits* (seconds from the store's now), so a store may use any clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gateway.clock import Clock
from gateway.core.quota import Limit, block_until, claim_delay, plan, trim, window_use

CLAIM_POLL = 0.005  # seconds: look again when only in-flight requests fill the window
MAX_FLIGHT = 120.0  # seconds: an unanswered request older than this no longer counts


@dataclass(frozen=True, slots=True)
class Reservation:
    admitted: bool
    wait: float  # seconds from now to the slot (refused: to the earliest slot there is)
    used: tuple[int, ...] = ()  # per limit: sent in the window ending now
    store_now: float | None = None  # the store's own clock, seconds (Redis TIME)


@dataclass(frozen=True, slots=True)
class LimitStatus:
    name: str
    limit: int
    window: float
    used: int  # in the window ending now
    reserved: int  # future slots held by queued requests


@dataclass(frozen=True, slots=True)
class AccountStatus:
    limits: tuple[LimitStatus, ...]
    blocked_for: float  # seconds left of a 429 block, 0 when none


class QuotaStore(Protocol):
    async def reserve(
        self, account: str, limits: Sequence[Limit], member: str, max_wait: float
    ) -> Reservation:
        """Reserve the earliest slot within ``max_wait``; a refusal reserves nothing."""
        ...

    async def claim(self, account: str, limits: Sequence[Limit], member: str) -> float | None:
        """At send time: 0 = send now (it is then in flight until ``settle``); > 0 = wait that
        long first (earlier requests reached Harvest later than planned); None = the slot is
        gone (a 429 block removed it): reserve again."""
        ...

    async def settle(self, account: str, limits: Sequence[Limit], member: str) -> None:
        """The response came back (or the attempt ended): the request reached Harvest by now."""
        ...

    async def release(self, account: str, limits: Sequence[Limit], member: str) -> None:
        """Give back an unsent reservation."""
        ...

    async def block(
        self, account: str, limits: Sequence[Limit], retry_after: float | None, penalty: float
    ) -> float:
        """Block ``limits`` of the account after a 429; drop their future slots inside the block.
        Returns its length (an existing longer block on any of them is never shortened)."""
        ...

    async def status(self, account: str, limits: Sequence[Limit]) -> AccountStatus: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Log:
    times: list[float] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    # Actual traffic, for the check at send time: requests sent and not yet answered (member
    # → claim time), and answered ones (settle times: each reached Harvest before that).
    flight: dict[str, float] = field(default_factory=dict)
    settled: list[float] = field(default_factory=list)
    settled_members: list[str] = field(default_factory=list)

    def add(self, t: float, member: str) -> None:
        i = bisect.bisect_right(self.times, t)
        self.times.insert(i, t)
        self.members.insert(i, member)

    def remove(self, member: str) -> bool:
        try:
            i = self.members.index(member)
        except ValueError:
            return False
        del self.times[i], self.members[i]
        return True

    def trim(self, now: float, window: float) -> None:
        before = len(self.times)
        trim(self.times, now, window)
        del self.members[: before - len(self.times)]
        self.trim_settled(now, window)

    def trim_settled(self, now: float, window: float) -> None:
        before = len(self.settled)
        trim(self.settled, now, window)
        del self.settled_members[: before - len(self.settled)]

    def drop_between(self, lo: float, hi: float) -> None:
        """Remove entries with ``lo < t < hi``."""
        a, b = bisect.bisect_right(self.times, lo), bisect.bisect_left(self.times, hi)
        del self.times[a:b], self.members[a:b]


class InProcessQuotaStore:
    """One replica's schedule, on the injected clock. Also the fallback when Redis is down."""

    def __init__(
        self,
        clock: Clock,
        margin: float = 0.0,
        *,
        poll: float = CLAIM_POLL,
        max_flight: float = MAX_FLIGHT,
    ) -> None:
        self.clock = clock
        self.margin = margin
        self.poll = poll
        self.max_flight = max_flight
        self._logs: dict[tuple[str, str], _Log] = {}
        self._blocked: dict[tuple[str, str], float] = {}  # (account, limit name) → until

    def _log(self, account: str, name: str) -> _Log:
        return self._logs.setdefault((account, name), _Log())

    def _windows(self, limits: Sequence[Limit]) -> list[Limit]:
        return [Limit(x.name, x.limit, x.window + self.margin) for x in limits]

    def blocked_until(self, account: str, limits: Sequence[Limit]) -> float:
        """The latest block among ``limits`` (0 when none)."""
        now, latest = self.clock.monotonic(), 0.0
        for x in limits:
            until = self._blocked.get((account, x.name), 0.0)
            if until and until <= now:
                del self._blocked[(account, x.name)]
            else:
                latest = max(latest, until)
        return latest

    async def reserve(
        self, account: str, limits: Sequence[Limit], member: str, max_wait: float
    ) -> Reservation:
        now = self.clock.monotonic()
        windows = self._windows(limits)
        logs = [self._log(account, x.name) for x in limits]
        for log, w in zip(logs, windows, strict=True):
            log.trim(now, w.window)
        p = plan(
            [log.times for log in logs],
            windows,
            now=now,
            blocked_until=self.blocked_until(account, limits),
            max_wait=max_wait,
        )
        used = tuple(
            window_use(log.times, now, w.window) for log, w in zip(logs, windows, strict=True)
        )
        if p.admitted:
            for log in logs:
                log.add(p.slot, member)
        return Reservation(p.admitted, p.wait, used)

    def record(self, account: str, limits: Sequence[Limit], member: str, wait: float) -> None:
        """Note a slot granted elsewhere (the Redis store), so a fallback starts from it."""
        t = self.clock.monotonic() + wait
        for x in self._windows(limits):
            log = self._log(account, x.name)
            log.trim(self.clock.monotonic(), x.window)
            log.add(t, member)

    def entries(self, account: str, name: str) -> list[tuple[float, str]]:
        log = self._logs.get((account, name))
        return list(zip(log.times, log.members, strict=True)) if log else []

    def accounts(self) -> set[str]:
        return {a for a, _ in self._logs} | {a for a, _ in self._blocked}

    async def claim(self, account: str, limits: Sequence[Limit], member: str) -> float | None:
        if not limits:
            return 0.0
        now = self.clock.monotonic()
        present = member in self._log(account, limits[0].name).members
        if not present or self.blocked_until(account, limits) > now:
            await self.release(account, limits, member)
            return None
        delay = 0.0
        for x in limits:
            log = self._log(account, x.name)
            log.trim_settled(now, x.window + self.margin)
            for m in [m for m, t in log.flight.items() if t < now - self.max_flight]:
                del log.flight[m]  # lost (a crashed sender): stop counting it
            lo = bisect.bisect_right(log.settled, now - x.window)
            settled = log.settled[lo : bisect.bisect_right(log.settled, now)]
            wait = claim_delay(settled, len(log.flight), x.limit, x.window, now, self.poll)
            delay = max(delay, wait)
        if delay > 0:
            return delay
        self.mark_sent(account, limits, member)
        return 0.0

    def mark_sent(self, account: str, limits: Sequence[Limit], member: str) -> None:
        """The request goes out now: in flight, and its schedule entry moves to now."""
        now = self.clock.monotonic()
        for x in limits:
            log = self._log(account, x.name)
            if log.remove(member):
                log.add(now, member)
            log.flight[member] = now

    async def settle(self, account: str, limits: Sequence[Limit], member: str) -> None:
        now = self.clock.monotonic()
        for x in limits:
            log = self._log(account, x.name)
            if log.flight.pop(member, None) is None:
                continue
            if log.remove(member):
                log.add(now, member)
            i = bisect.bisect_right(log.settled, now)
            log.settled.insert(i, now)
            log.settled_members.insert(i, member)

    def in_flight(self, account: str, name: str) -> list[str]:
        log = self._logs.get((account, name))
        return list(log.flight) if log else []

    def settled_entries(self, account: str, name: str) -> list[tuple[float, str]]:
        log = self._logs.get((account, name))
        return list(zip(log.settled, log.settled_members, strict=True)) if log else []

    async def release(self, account: str, limits: Sequence[Limit], member: str) -> None:
        for x in limits:
            self._log(account, x.name).remove(member)

    async def block(
        self, account: str, limits: Sequence[Limit], retry_after: float | None, penalty: float
    ) -> float:
        now = self.clock.monotonic()
        until = block_until(now, retry_after, penalty, self.blocked_until(account, limits))
        self.set_block(account, limits, until)
        for x in limits:
            self._log(account, x.name).drop_between(now, until)
        return until - now

    def set_block(self, account: str, limits: Sequence[Limit], until: float) -> None:
        for x in limits:
            key = (account, x.name)
            self._blocked[key] = max(self._blocked.get(key, 0.0), until)

    async def status(self, account: str, limits: Sequence[Limit]) -> AccountStatus:
        now = self.clock.monotonic()
        out = []
        for x, w in zip(limits, self._windows(limits), strict=True):  # read-only, like Redis
            log = self._log(account, x.name)
            used = window_use(log.times, now, w.window)
            reserved = len(log.times) - bisect.bisect_right(log.times, now)
            out.append(LimitStatus(x.name, x.limit, x.window, used, reserved))
        return AccountStatus(tuple(out), max(0.0, self.blocked_until(account, limits) - now))

    async def aclose(self) -> None:
        self._logs.clear()
