"""The reservation schedule against a brute-force oracle, plus the small pure helpers."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.quota import (
    Limit,
    block_until,
    earliest_slot,
    parse_retry_after,
    plan,
    trim,
    violations,
    window_use,
)


def feasible(logs: Sequence[Sequence[float]], limits: list[Limit], t: int) -> bool:
    return all(
        violations([*log, t], x.limit, x.window) == 0 for log, x in zip(logs, limits, strict=True)
    )


def oracle(logs: Sequence[Sequence[float]], limits: list[Limit], lower: int) -> int:
    """The earliest feasible time by brute force: the answer is ``lower`` or some ``s + W``."""
    candidates = {lower} | {s + x.window for log, x in zip(logs, limits, strict=True) for s in log}
    for c in sorted(c for c in candidates if c >= lower):
        if feasible(logs, limits, int(c)):
            return int(c)
    raise AssertionError("no feasible slot")  # unreachable: max(s) + W always fits


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[list[int]], list[Limit], int]:
    """One to three limits, each with a valid log (no window over its limit)."""
    n_limits = draw(st.integers(1, 3))
    limits = [
        Limit(f"q{i}", draw(st.integers(1, 5)), draw(st.integers(1, 60))) for i in range(n_limits)
    ]
    logs: list[list[int]] = []
    for x in limits:
        log: list[int] = []
        for t in draw(st.lists(st.integers(0, 200), max_size=30)):
            if violations([*log, t], x.limit, x.window) == 0:
                log.append(t)
        logs.append(sorted(log))
    return logs, limits, draw(st.integers(0, 220))


@settings(max_examples=600, deadline=None)
@given(schedules())
def test_earliest_slot_matches_the_oracle(case: tuple[list[list[int]], list[Limit], int]) -> None:
    logs, limits, lower = case
    slot = earliest_slot(logs, limits, lower)
    assert slot >= lower
    assert feasible(logs, limits, int(slot)), "a window went over its limit"
    assert slot == oracle(logs, limits, lower), "not the earliest possible slot"


@settings(max_examples=150, deadline=None)
@given(
    limits=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 40)), min_size=1, max_size=3).map(
        lambda xs: [Limit(f"q{i}", n, w) for i, (n, w) in enumerate(xs)]
    ),
    steps=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 2**16)), min_size=1, max_size=60),
)
def test_a_run_of_reservations_stays_exact(
    limits: list[Limit], steps: list[tuple[int, int]]
) -> None:
    """Reservations at advancing ``now`` (each on a random subset of limits), trimmed like the
    stores trim: every slot is the oracle's, and no window of any full log ever goes over."""
    now = 0
    logs: list[list[float]] = [[] for _ in limits]
    full: list[list[int]] = [[] for _ in limits]
    for advance, mask in steps:
        now += advance
        chosen = [i for i in range(len(limits)) if mask >> i & 1] or [0]
        for i in chosen:
            trim(logs[i], now, limits[i].window)
        sub_logs, sub_limits = [logs[i] for i in chosen], [limits[i] for i in chosen]
        slot = int(earliest_slot(sub_logs, sub_limits, now))
        assert slot == oracle(sub_logs, sub_limits, now)
        for i in chosen:
            logs[i].append(slot)
            logs[i].sort()
            full[i].append(slot)
    for log, x in zip(full, limits, strict=True):
        assert violations(log, x.limit, x.window) == 0


def test_a_queued_report_does_not_hold_up_ordinary_requests() -> None:
    """Reports have used their own limit; an ordinary request still gets the general slot now."""
    general, reports = Limit("general", 10, 15.0), Limit("reports", 3, 900.0)
    gen_log, rep_log = [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]
    assert earliest_slot([gen_log, rep_log], [general, reports], 3.0) == 900.0
    assert earliest_slot([gen_log], [general], 3.0) == 3.0


def test_full_burst_then_the_window_edge() -> None:
    lim = Limit("general", 3, 2.0)
    assert earliest_slot([[0.0, 0.0, 0.0]], [lim], 0.0) == 2.0
    assert earliest_slot([[0.0, 0.5, 1.0]], [lim], 0.7) == 2.0
    assert earliest_slot([[0.0, 0.5]], [lim], 0.7) == 0.7  # room left: now


def test_plan_respects_a_block_and_max_wait() -> None:
    lim = Limit("general", 2, 1.0)
    p = plan([[]], [lim], now=10.0, blocked_until=12.5, max_wait=5.0)
    assert (p.admitted, p.slot, p.wait) == (True, 12.5, 2.5)
    p = plan([[10.0, 10.0]], [lim], now=10.0, blocked_until=0.0, max_wait=0.5)
    assert (p.admitted, p.slot) == (False, 11.0)


def test_trim_and_window_use() -> None:
    log = [1.0, 2.0, 3.0, 4.0, 9.0]
    trim(log, 5.0, 3.0)
    assert log == [2.0, 3.0, 4.0, 9.0]
    assert window_use(log, 5.0, 3.0) == 2  # (2, 5]: 3 and 4; 9 is a future reservation


def test_retry_after_header_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("2.5", now) == 2.5  # decimal seconds, as some servers send
    assert parse_retry_after("-3", now) is None
    date = "Tue, 14 Nov 2023 22:13:30 GMT"  # 10 s after ``now``
    assert parse_retry_after(date, now) == 10.0


def test_block_never_shortens() -> None:
    assert block_until(100.0, None, 15.0, 0.0) == 115.0
    assert block_until(100.0, 3.0, 15.0, 0.0) == 103.0
    assert block_until(100.0, 3.0, 15.0, 120.0) == 120.0


def test_a_429_is_blamed_on_the_scarcest_limit() -> None:
    from gateway.core.quota import blamed

    general, reports = Limit("general", 100, 15.0), Limit("reports", 100, 900.0)
    batch = Limit("batch", 40, 15.0)  # a local cap: on a tie the broader limit is blamed
    assert blamed([general]) == (general,)
    assert blamed([general, reports]) == (reports,)
    assert blamed([general, batch]) == (general,)
    assert blamed([]) == ()
