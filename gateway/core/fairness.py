"""Who goes next within one account: priority classes, then round-robin over callers.

Slots reserved for one set of limits are interchangeable, so the queue decides who *uses* the
next due slot, not who reserved it. The order is strict by priority class, then by a per-caller
sequence tag (start-time fair queueing with unit cost): a caller with 2,000 queued pages and a
caller with one interactive GET alternate, whatever order they arrived in.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

PRIORITIES: dict[str, int] = {"interactive": 0, "normal": 1, "batch": 2}
DEFAULT_PRIORITY = "normal"

T = TypeVar("T")


def parse_priority(value: str | None) -> str | None:
    """The class named by ``X-Gateway-Priority``; None when absent; ValueError when unknown."""
    if value is None or not value.strip():
        return None
    name = value.strip().lower()
    if name not in PRIORITIES:
        raise ValueError(f"X-Gateway-Priority must be one of {', '.join(PRIORITIES)}")
    return name


@dataclass(order=True, frozen=True, slots=True)
class Ticket:
    rank: int  # priority class, lower first
    tag: int  # fair-queueing sequence within the class
    seq: int  # arrival order, the final tie-break


@dataclass(slots=True)
class FairQueue(Generic[T]):
    """An ordered queue of items keyed by ``Ticket``; O(n) insert, fine for bounded queues."""

    _entries: list[tuple[Ticket, int]] = field(default_factory=list)
    _items: dict[int, T] = field(default_factory=dict)
    _last_tag: dict[tuple[int, str], int] = field(default_factory=dict)
    _virtual: dict[int, int] = field(default_factory=dict)  # last dispatched tag per class
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def ticket(self, caller: str, priority: str) -> Ticket:
        rank = PRIORITIES[priority]
        tag = max(self._last_tag.get((rank, caller), 0), self._virtual.get(rank, 0)) + 1
        self._last_tag[(rank, caller)] = tag
        return Ticket(rank, tag, next(self._seq))

    def push(self, ticket: Ticket, item: T) -> int:
        """Insert; returns the item's position (0 = next to be served)."""
        entry = (ticket, id(item))
        pos = bisect.bisect_left(self._entries, entry)
        self._entries.insert(pos, entry)
        self._items[id(item)] = item
        return pos

    def pop(self) -> tuple[Ticket, T]:
        ticket, key = self._entries.pop(0)
        self._virtual[ticket.rank] = max(self._virtual.get(ticket.rank, 0), ticket.tag)
        self._forget_idle()
        return ticket, self._items.pop(key)

    def remove(self, item: T) -> bool:
        key = id(item)
        if key not in self._items:
            return False
        del self._items[key]
        self._entries = [e for e in self._entries if e[1] != key]
        return True

    def items(self) -> list[T]:
        return [self._items[k] for _, k in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def _forget_idle(self) -> None:
        # Tags at or below the class's virtual time carry no credit: drop them (bounded memory).
        stale = [k for k, tag in self._last_tag.items() if tag <= self._virtual.get(k[0], 0)]
        if len(stale) > 64 or not self._entries:
            for k in stale:
                del self._last_tag[k]


def unserved(slots: Sequence[float], deadlines: Sequence[float]) -> int | None:
    """The first position whose slot (the i-th earliest) is missing or past its deadline."""
    for i, deadline in enumerate(deadlines):
        if i >= len(slots) or slots[i] > deadline:
            return i
    return None
