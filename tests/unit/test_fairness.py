from __future__ import annotations

import pytest

from gateway.core.fairness import FairQueue, parse_priority, unserved


def drain(q: FairQueue[str]) -> list[str]:
    out = []
    while q:
        out.append(q.pop()[1])
    return out


def test_callers_alternate_whatever_the_arrival_order() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(5):
        q.push(q.ticket("crawler", "normal"), f"crawl{i}")
    q.push(q.ticket("human", "normal"), "get")
    assert drain(q)[:3] == ["crawl0", "get", "crawl1"]


def test_priority_classes_come_first() -> None:
    q: FairQueue[str] = FairQueue()
    for i in range(3):
        q.push(q.ticket("crawler", "batch"), f"batch{i}")
    q.push(q.ticket("crawler", "normal"), "normal")
    q.push(q.ticket("human", "interactive"), "interactive")
    assert drain(q) == ["interactive", "normal", "batch0", "batch1", "batch2"]


def test_a_late_caller_does_not_jump_ahead_of_served_ones() -> None:
    """Credit is not saved up: a caller arriving after others were served starts at now."""
    q: FairQueue[str] = FairQueue()
    for i in range(4):
        q.push(q.ticket("a", "normal"), f"a{i}")
    assert drain(q)[:2] == ["a0", "a1"]
    for i in range(4, 6):
        q.push(q.ticket("a", "normal"), f"a{i}")
    q.push(q.ticket("b", "normal"), "b0")
    q.push(q.ticket("b", "normal"), "b1")
    assert drain(q) == ["a4", "b0", "a5", "b1"]


def test_remove() -> None:
    q: FairQueue[str] = FairQueue()
    q.push(q.ticket("a", "normal"), "x")
    q.push(q.ticket("a", "normal"), "y")
    assert q.remove("x")
    assert not q.remove("x")
    assert q.items() == ["y"]


def test_parse_priority() -> None:
    assert parse_priority(None) is None
    assert parse_priority(" Batch ") == "batch"
    with pytest.raises(ValueError, match="interactive"):
        parse_priority("urgent")


def test_unserved() -> None:
    assert unserved([1.0, 2.0], [5.0, 5.0]) is None
    assert unserved([1.0, 6.0], [5.0, 5.0]) == 1
    assert unserved([1.0], [5.0, 5.0]) == 1
