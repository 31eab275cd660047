"""Exact sliding-window-log rate limiting, per account id, like Harvest's.

A request at time ``now`` is admitted when fewer than ``limit`` admitted requests of the
same account have a timestamp ``t`` with ``now - t < window``. Rejected (429) requests
are not recorded, so they do not use up the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import SimConfig


@dataclass
class _Window:
    stamps: deque[float] = field(default_factory=deque)

    def prune(self, now: float, window: float) -> None:
        while self.stamps and now - self.stamps[0] >= window:
            self.stamps.popleft()

    def wait(self, now: float, window: float, limit: int) -> float | None:
        """Seconds until one more request fits, or None if it fits now."""
        self.prune(now, window)
        if len(self.stamps) < limit:
            return None
        if limit <= 0:
            return window
        # the (len - limit + 1)-th oldest stamp has to leave the window
        oldest_blocking = self.stamps[len(self.stamps) - limit]
        return max(oldest_blocking + window - now, 0.0)


@dataclass
class RateLimiter:
    config: SimConfig
    _general: dict[str, _Window] = field(default_factory=dict)
    _reports: dict[str, _Window] = field(default_factory=dict)

    def admit(self, account_id: str, now: float, *, is_report: bool) -> float | None:
        """Record the request and return None, or return the wait in seconds (a 429)."""
        cfg = self.config
        general = self._general.setdefault(account_id, _Window())
        waits = [general.wait(now, cfg.general_window, cfg.general_limit)]
        reports: _Window | None = None
        if is_report:
            reports = self._reports.setdefault(account_id, _Window())
            waits.append(reports.wait(now, cfg.reports_window, cfg.reports_limit))
        blocking = [w for w in waits if w is not None]
        if blocking:
            return max(blocking)
        general.stamps.append(now)
        if reports is not None:
            reports.stamps.append(now)
        return None

    def reset(self) -> None:
        self._general.clear()
        self._reports.clear()


def retry_after_seconds(wait: float) -> int:
    """Whole seconds a client should wait: ceil, at least 1."""
    return max(1, math.ceil(wait - 1e-9))


def max_in_window(stamps: Iterable[float], window: float) -> int:
    """Largest number of stamps within any half-open window ``[t, t + window)``."""
    ordered = sorted(stamps)
    best = 0
    lo = 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
