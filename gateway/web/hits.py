"""Fresh cache hits answered before an ``Exchange`` is built: the gateway's hot path.

Most of what a hit cost was work only a miss needs: the body read, the ``Exchange`` and its
header factory, the pipeline. What decides whether a GET may be answered from memory (its
route, whether the caller is valid and who it is, the cache key and rule) depends only on the
request's target, scheme and headers. So the full path's own functions decide it once per
distinct request shape, the answer is memoised on exactly those inputs, and a request whose
shape is new, or whose copy is not fresh in memory, goes the whole way as before. What every
hit on one stored entry shares (its headers, metric labels and access line) is built at the
entry's first hit (``Answer``); a hit then sets only its request id, Age and duration.
"""

from __future__ import annotations

import enum
import weakref
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web
from multidict import CIMultiDict

from gateway.policy.schema import CacheRule
from gateway.stores.envelope import Entry
from gateway.telemetry.logging import FixedLine

# Headers that name one request (its id, a distributed trace's context): no decision reads them,
# and they must not make every request's shape new.
_PER_REQUEST_RAW: Final = frozenset({b"x-request-id", b"traceparent", b"tracestate",
    b"x-amzn-trace-id", b"x-cloud-trace-context", b"sentry-trace", b"baggage"})  # fmt: skip

Shape = tuple[str, str, tuple[tuple[bytes, bytes], ...]]


class Unseen(enum.Enum):
    UNSEEN = "unseen"


UNSEEN: Final = Unseen.UNSEEN


@dataclass(frozen=True, slots=True)
class Answer:
    """What every hit on one stored entry has in common, built at its first hit."""

    # Weakly: a plan outlives its entry's eviction, and must not keep its body in memory.
    entry: weakref.ref[Entry]
    headers: CIMultiDict[str]  # the response's, all but its X-Request-Id and Age final
    labels: tuple[str, ...]  # its ``requests`` metric labels
    line: FixedLine | None  # its access line; None where the access-log setting skips it


@dataclass(slots=True)
class Plan:
    """How a request of one shape is answered from the cache."""

    template: str  # route template, for metrics and the access line
    account_id: str
    key: str
    rule: CacheRule
    answer: Answer | None = None  # for the entry last served (a refreshed entry gets its own)


def shape_of(request: web.Request) -> Shape:
    """Everything a ``Plan`` is computed from: target (path and query), scheme (the public
    origin of rewritten links) and the headers as received."""
    return request.raw_path, request.scheme, request.raw_headers


def general_shape(shape: Shape) -> Shape | None:
    """``shape`` less the headers naming one request (a request or trace id), under which its
    plan is kept; None when it has none (the shape is its own general shape)."""
    path, scheme, raw = shape
    kept = tuple(pair for pair in raw if pair[0].lower() not in _PER_REQUEST_RAW)
    return None if len(kept) == len(raw) else (path, scheme, kept)


class PlanMemo:
    """Plans by request shape (None: this shape is never a plain hit), at most ``size`` of
    them; when full it starts over, so a flood of distinct shapes costs memory only once."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._plans: dict[Shape, Plan | None] = {}

    def get(self, shape: Shape) -> Plan | Literal[Unseen.UNSEEN] | None:
        return self._plans.get(shape, UNSEEN)

    def put(self, shape: Shape, plan: Plan | None) -> None:
        if len(self._plans) >= self.size:
            self._plans.clear()
        self._plans[shape] = plan

    def __len__(self) -> int:
        return len(self._plans)
