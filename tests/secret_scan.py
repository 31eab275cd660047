"""The session's secret scan: no token any test used may appear in a log, `/metrics` or a cassette.

The fixtures that start gateways and simulators register here what they see: every credential a
caller presented to a gateway (a test-only middleware reads ``Authorization``, ``X-Gateway-Key``
and secret query parameters), every token a simulator received, each gateway's log stream and
`/metrics` text, and its cassette directory. At the end of the session ``tests/conftest.py``
scans them all and fails the run on a hit, or when there was nothing to scan although gateways
ran (a scan that looked at nothing must not pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from aiohttp.web_request import BaseRequest

MIN_LENGTH = 8  # shorter "tokens" (e.g. "x") would match innocent text
_SECRET_PARAMS = ("access_token", "refresh_token", "client_secret", "password", "code")


def simulator_tokens() -> set[str]:
    """Every credential the Harvest simulator hands out, whether or not a test used it."""
    from gateway.simulator import data

    names = ("TOKEN", "SECRET")
    return {v for k, v in vars(data).items() if isinstance(v, str) and any(n in k for n in names)}


@dataclass(frozen=True, slots=True)
class Leak:
    token: str
    source: str

    def __str__(self) -> str:
        shown = self.token[:4] + "…" + self.token[-2:]  # never print the whole secret again
        return f"{shown} (len {len(self.token)}) in {self.source}"


@dataclass
class ScanReport:
    tokens: int
    bytes_by_kind: dict[str, int]
    files: int
    leaks: list[Leak]

    @property
    def scanned(self) -> int:
        return sum(self.bytes_by_kind.values())

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:,} B" for k, v in sorted(self.bytes_by_kind.items()))
        head = f"secret scan: {self.tokens} tokens over {parts}; {self.files} cassette files"
        if not self.leaks:
            return head + ": clean"
        return head + f": {len(self.leaks)} LEAKS\n" + "\n".join(f"  {x}" for x in self.leaks)


@dataclass
class SecretRegistry:
    tokens: set[str] = field(default_factory=set)
    texts: list[tuple[str, str, Callable[[], str] | str]] = field(default_factory=list)
    cassette_dirs: set[Path] = field(default_factory=set)
    gateways: int = 0

    def add_tokens(self, values: Iterable[str | None]) -> None:
        self.tokens.update(v for v in values if v and len(v) >= MIN_LENGTH)

    def add_text(self, kind: str, source: str, text: Callable[[], str] | str) -> None:
        """A text to scan at the end (a callable is read then: a log still being written)."""
        self.texts.append((kind, source, text))

    def add_cassette_dir(self, path: str | Path) -> None:
        self.cassette_dirs.add(Path(path).resolve())

    def observe(self, request: BaseRequest) -> None:
        """Records the credentials a caller presents, so a leak of any of them is caught."""
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        self.add_tokens(
            [
                value.strip() if scheme.lower() == "bearer" else auth,
                request.headers.get("X-Gateway-Key"),
                *(v for k, v in parse_qsl(request.query_string) if k in _SECRET_PARAMS),
            ]
        )

    def scan(self, extra_dirs: Iterable[Path] = ()) -> ScanReport:
        tokens = sorted(self.tokens)
        leaks: list[Leak] = []
        sizes: dict[str, int] = {}

        def look(kind: str, source: str, text: str) -> None:
            sizes[kind] = sizes.get(kind, 0) + len(text)
            leaks.extend(Leak(t, source) for t in tokens if t in text)

        for kind, source, text in self.texts:
            look(kind, source, text() if callable(text) else text)
        files = 0
        for root in sorted({*self.cassette_dirs, *(Path(p).resolve() for p in extra_dirs)}):
            if not root.is_dir():
                continue
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                files += 1
                look("cassettes", str(path), path.read_bytes().decode("utf-8", "replace"))
        return ScanReport(len(tokens), sizes, files, leaks)


def verdict(report: ScanReport, registry: SecretRegistry) -> str | None:
    """Why the session must fail, or None when the scan is clean and looked at something."""
    if report.leaks:
        return report.summary()
    if registry.gateways:
        missing = [k for k in ("logs", "metrics") if not report.bytes_by_kind.get(k)]
        if not report.tokens or missing:
            return (
                f"secret scan looked at nothing: {registry.gateways} gateways ran but "
                f"{report.tokens} tokens were known and {missing or 'nothing'} had no bytes"
            )
    return None
