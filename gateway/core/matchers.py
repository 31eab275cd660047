"""Which recorded request answers a new one: vcrpy's default matchers, plus the account.

vcrpy's defaults are ``method, scheme, host, port, path, query``: the method case-sensitive, the
host lower-cased, the port defaulted by scheme, an empty path read as ``/``, and the query as a
sorted list of pairs with blank values dropped (so order does not matter, duplicates do). The
gateway adds the Harvest account, compared as a digest so redacted cassettes still match.

A request's :class:`Shape` is computed the same way for both sides, after the query parameters the
redaction policy removes are removed, so a cassette written without ``access_token`` matches a
request that carries one (vcrpy applies its filters to the new request before matching, too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "account")
ACCOUNT_HEADER = "Harvest-Account-Id"
ACCOUNT_PREFIX = "acct-sha256:"
_DEFAULT_PORTS = {"http": 80, "https": 443}

Query = tuple[tuple[str, str], ...]
Key = tuple[str, str, str | None, int | None, str, Query, str | None]


def account_tag(account_id: str) -> str:
    """The form an account id takes in a cassette: a digest, stable across recordings."""
    if account_id.startswith(ACCOUNT_PREFIX):
        return account_id
    digest = hashlib.sha256(b"harvest-account\x00" + account_id.encode()).hexdigest()
    return ACCOUNT_PREFIX + digest[:16]


@dataclass(frozen=True, slots=True)
class Shape:
    """The parts of a request that matching looks at."""

    method: str
    scheme: str
    host: str | None
    port: int | None
    path: str
    query: Query
    account: str | None  # a tag from ``account_tag``; None: not recorded (matches any account)

    @property
    def key(self) -> Key:
        return (self.method, self.scheme, self.host, self.port, self.path, self.query, self.account)

    def without_account(self) -> Shape:
        return Shape(self.method, self.scheme, self.host, self.port, self.path, self.query, None)


def shape_of(
    method: str,
    uri: str,
    headers: Mapping[str, Any],
    ignored_query: Iterable[str] = (),
    account_query: str = "account_id",
) -> Shape:
    """A request's shape from its method, absolute URI and headers (values may be lists).

    ``ignored_query`` names parameters left out of the comparison (those redaction removes);
    the account comes from the ``Harvest-Account-Id`` header or, failing that, the query.
    """
    parts = urlsplit(uri)
    origin = Origin(parts.scheme, parts.hostname, parts.port)
    return shape_at(method, origin, parts.path, parts.query, headers, ignored_query, account_query)


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port as vcrpy compares them (parsed once per upstream, not per request)."""

    scheme: str
    host: str | None
    port: int | None

    @classmethod
    def of(cls, origin: str) -> Origin:
        parts = urlsplit(origin)
        return cls(parts.scheme, parts.hostname, parts.port)

    def __post_init__(self) -> None:
        port = self.port if self.port is not None else _DEFAULT_PORTS.get(self.scheme)
        object.__setattr__(self, "port", port if self.host else None)


def shape_at(
    method: str,
    origin: Origin,
    path: str,
    query: str,
    headers: Mapping[str, Any],
    ignored_query: Iterable[str] = (),
    account_query: str = "account_id",
) -> Shape:
    """A request's shape from an already parsed origin, a path and a raw query string."""
    ignored = {n.lower() for n in ignored_query}
    pairs = parse_qsl(query) if query else []
    account = _header(headers, ACCOUNT_HEADER)
    if account is None:
        account = next((v for k, v in pairs if k == account_query), None)
    return Shape(
        method=method,
        scheme=origin.scheme,
        host=origin.host,
        port=origin.port,
        path=path or "/",
        query=tuple(sorted((k, v) for k, v in pairs if k.lower() not in ignored)),
        account=account_tag(account.strip()) if account and account.strip() else None,
    )


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    direct = headers.get(name)  # a CIMultiDict answers case-insensitively at once
    if direct is not None:
        return str(direct[0]) if isinstance(direct, list | tuple) and direct else str(direct)
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            if isinstance(v, list | tuple):
                return str(v[0]) if v else None
            return str(v)
    return None


def differences(new: Shape, recorded: Shape) -> dict[str, dict[str, Any]]:
    """Field by field, what keeps ``recorded`` from answering ``new`` (empty: it matches)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("method", "scheme", "host", "port", "path"):
        a, b = getattr(new, name), getattr(recorded, name)
        if a != b:
            out[name] = {"request": a, "recorded": b}
    if new.query != recorded.query:
        mine, theirs = set(new.query), set(recorded.query)
        out["query"] = {
            "request": _query_text(new.query),
            "recorded": _query_text(recorded.query),
            "only_in_request": _query_text(tuple(sorted(mine - theirs))),
            "only_in_recorded": _query_text(tuple(sorted(theirs - mine))),
        }
    if recorded.account is not None and new.account != recorded.account:
        out["account"] = {"request": new.account, "recorded": recorded.account}
    return out


def matches(new: Shape, recorded: Shape) -> bool:
    return not differences(new, recorded)


def _query_text(query: Query) -> str:
    return "&".join(f"{k}={v}" for k, v in query)


# Ties between equally close recordings go to the one whose differing fields weigh least: a wrong
# query value is a nearer miss than a wrong path, which is nearer than a wrong host or method.
_WEIGHT = {"query": 1, "account": 2, "port": 3, "scheme": 3, "path": 4, "host": 5, "method": 6}


@dataclass(frozen=True, slots=True)
class Near:
    index: int
    differs: dict[str, dict[str, Any]]


def closest(new: Shape, recorded: Iterable[tuple[int, Shape]], limit: int = 3) -> list[Near]:
    """The ``limit`` recorded requests that match ``new`` on the most fields (vcrpy's ranking)."""
    ranked: list[tuple[int, int, int, dict[str, dict[str, Any]]]] = []
    seen: set[Key] = set()
    for index, shape in recorded:
        if shape.key in seen:
            continue  # repeated episodes of one request say the same thing
        seen.add(shape.key)
        diff = differences(new, shape)
        ranked.append((len(diff), sum(_WEIGHT[k] for k in diff), index, diff))
    ranked.sort(key=lambda r: (r[0], r[1], r[2]))
    return [Near(index, diff) for _, _, index, diff in ranked[:limit]]


def summary(differs: Mapping[str, object]) -> str:
    """``"query"``, ``"path and query"``, ``"host, port and path"``."""
    names = list(differs)
    if not names:
        return "nothing"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
