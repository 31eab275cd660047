"""The quota schedule: "at most N requests in any window of length W", as pure functions.

Each applicable limit keeps a log of reserved send times (past sends and future reservations).
A new request gets the earliest ``t >= lower`` such that, with ``t`` added, no half-open window
``[x, x + W)`` of any limit holds more than N entries. Time units are the caller's (seconds in
process, microseconds in Redis): nothing here reads a clock.

Why one sweep per limit finds it: adding ``t`` breaks a limit iff some N consecutive sorted
entries ``s[j] .. s[j+N-1]`` already fit in one window and ``t`` falls in the open interval
``(s[j+N-1] - W, s[j] + W)``. Both ends grow with ``j``, so a left-to-right sweep pushes ``t``
past every interval it hits; repeat over the limits until none moves it. The Redis Lua script
in ``gateway/stores/quota_redis.py`` is a line-for-line mirror of ``earliest_slot``.
"""

from __future__ import annotations

import bisect
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """One quota as the schedule sees it; ``window`` already includes the safety margin."""

    name: str
    limit: int
    window: float


@dataclass(frozen=True, slots=True)
class Plan:
    admitted: bool
    slot: float  # the earliest feasible send time (reserved only when admitted)
    wait: float  # slot - now


def earliest_slot(logs: Sequence[Sequence[float]], limits: Sequence[Limit], lower: float) -> float:
    """The earliest ``t >= lower`` that keeps every log within its limit (logs sorted)."""
    t = lower
    moved = True
    while moved:
        moved = False
        for log, lim in zip(logs, limits, strict=True):
            n, w = lim.limit, lim.window
            # entries at or before t - W cannot push t: start the sweep after them
            start = bisect.bisect_right(log, t - w)
            for j in range(start, len(log) - n + 1):
                first, last = log[j], log[j + n - 1]
                if last - first < w:
                    if t <= last - w:
                        break
                    if t < first + w:
                        t = first + w
                        moved = True
    return t


def plan(
    logs: Sequence[Sequence[float]],
    limits: Sequence[Limit],
    *,
    now: float,
    blocked_until: float,
    max_wait: float,
) -> Plan:
    """Where a new request would go, and whether that is within ``max_wait`` of ``now``."""
    slot = earliest_slot(logs, limits, max(now, blocked_until))
    wait = slot - now
    return Plan(admitted=wait <= max_wait, slot=slot, wait=wait)


def claim_delay(
    settled: Sequence[float], in_flight: int, limit: int, window: float, now: float, poll: float
) -> float:
    """At send time: how long until sending now is provably within the limit (0: send now).

    Planned slots assume earlier requests reached Harvest on time; the check at send time uses
    what is known instead. A request *settled* at ``s`` (its response came back) reached Harvest
    no later than ``s``; one still in flight may arrive any time, so it counts as inside every
    window. Sending at ``now`` is safe when fewer than ``limit`` of those are in
    ``(now - W, now]``: then no window of Harvest's holds more than ``limit``, whatever the
    network did. ``settled`` is sorted and already cut to that window.
    """
    excess = len(settled) + in_flight - limit + 1
    if excess <= 0:
        return 0.0
    if excess <= len(settled):
        return settled[excess - 1] + window - now
    return poll  # only responses still in flight can free the window: look again shortly


def trim(log: list[float], now: float, window: float) -> None:
    """Drop entries no window containing ``now`` or later can see (strictly before now - W)."""
    cut = bisect.bisect_left(log, now - window)
    if cut:
        del log[:cut]


def window_use(log: Sequence[float], now: float, window: float) -> int:
    """Entries sent in the window ending at ``now``: ``(now - W, now]``."""
    return bisect.bisect_right(log, now) - bisect.bisect_right(log, now - window)


def violations(log: Sequence[float], limit: int, window: float) -> int:
    """How many windows ``[s, s + W)`` starting at an entry hold more than ``limit`` entries."""
    ordered = sorted(log)
    bad = 0
    for i, s in enumerate(ordered):
        if bisect.bisect_left(ordered, s + window) - i > limit:
            bad += 1
    return bad


_DECIMAL = re.compile(r"^\d+\.\d+$")


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    if _DECIMAL.match(text):  # not RFC 9110's form, but some servers and mirrors send it
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_wall)


def blamed(limits: Sequence[Limit]) -> tuple[Limit, ...]:
    """The limit a 429 is put down to. Harvest does not say which it enforced, so it is the
    scarcest of the request's limits: the longest window (a report's 15 min before the general
    15 s), the first on a tie. A report's 429 then leaves other requests alone; had the general
    limit been the one exceeded, the next general request's own 429 blocks that too."""
    return (max(limits, key=lambda x: x.window),) if limits else ()


def block_until(now: float, retry_after: float | None, penalty: float, current: float) -> float:
    """After a 429: never shorten an existing block; no header means the default penalty."""
    return max(current, now + (penalty if retry_after is None else max(retry_after, 0.0)))
