"""Fault injection: one-shot or N-times faults matched by path prefix.

Kinds:

``reset``          close the connection (RST) without any response
``delay:<secs>``   wait, then answer normally
``status:<code>``  answer with that status and a small body (JSON for 4xx/5xx)
``truncate``       answer normally but declare a Content-Length larger than the body sent,
                   then close the connection
``429``            a 429 regardless of the window (honours ``SimConfig.retry_after``)
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SIMPLE_KINDS = frozenset({"reset", "truncate", "429"})


@dataclass
class Fault:
    kind: str
    path_prefix: str = "/v2/"
    times: int = 1
    method: str | None = None
    fired: int = 0

    @property
    def name(self) -> str:
        return self.kind.split(":", 1)[0]

    @property
    def delay(self) -> float:
        return float(self.kind.split(":", 1)[1]) if self.name == "delay" else 0.0

    @property
    def status(self) -> int:
        if self.name == "status":
            return int(self.kind.split(":", 1)[1])
        return 429 if self.kind == "429" else 0

    def matches(self, method: str, paths: tuple[str, ...]) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return any(p.startswith(self.path_prefix) for p in paths)


def validate_kind(kind: str) -> None:
    if kind in _SIMPLE_KINDS:
        return
    name, _, arg = kind.partition(":")
    try:
        if name == "delay" and float(arg) >= 0:
            return
        if name == "status" and 100 <= int(arg) <= 599:
            return
    except ValueError:
        pass
    raise ValueError(f"unknown fault kind {kind!r}")


@dataclass
class FaultPlan:
    """Queue of pending faults; the first matching one fires and is used up."""

    pending: list[Fault] = field(default_factory=list)

    def add(
        self,
        kind: str,
        path_prefix: str = "/v2/",
        times: int = 1,
        *,
        method: str | None = None,
    ) -> Fault:
        """Queue a fault for the next ``times`` requests whose path starts with the prefix.

        The prefix is matched against the raw path and against its canonical form
        (``/api/v2/x`` is also seen as ``/v2/x``).
        """
        validate_kind(kind)
        if times < 1:
            raise ValueError("times must be >= 1")
        fault = Fault(kind=kind, path_prefix=path_prefix, times=times, method=method)
        self.pending.append(fault)
        return fault

    def take(self, method: str, paths: tuple[str, ...]) -> Fault | None:
        for fault in self.pending:
            if fault.matches(method, paths):
                fault.fired += 1
                if fault.fired >= fault.times:
                    self.pending.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.pending.clear()
