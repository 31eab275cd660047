"""Cache decisions as pure functions: keys, cacheability, freshness, invalidation prefixes.

Nothing here does I/O or reads a clock: ``now`` (wall seconds, shared by replicas) is passed in.
Identity is part of every key, so an entry is only ever served to the credential that filled it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import parse_qsl, urlencode

from gateway.core.routes import canonical_path
from gateway.policy.schema import CacheRule, CacheRules

# Identity travels in the principal; these never shape the key's query part.
IDENTITY_PARAMS = frozenset({"access_token", "account_id"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_SEP = "|"

# Per-request or per-connection headers a stored reply must not replay. ``Date`` is kept: a
# stored answer says when the origin made it, and ``Age`` how long it has been kept since.
NOT_STORED = frozenset(
    {"age", "x-cache", "x-request-id", "x-upstream-request-id", "set-cookie",
     "x-runtime", "x-gateway-queue-wait", "content-length", "transfer-encoding", "connection",
     "keep-alive"}
)  # fmt: skip


class Outcome(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"
    COALESCED = "COALESCED"
    BYPASS = "BYPASS"


class Directive(StrEnum):
    USE = "use"  # look up, fill on a miss, store
    REFRESH = "refresh"  # caller said no-cache: skip the lookup, fetch, store
    NO_STORE = "no_store"  # caller said no-store: skip the lookup, fetch, store nothing


@dataclass(frozen=True, slots=True)
class KeyParts:
    """What a key is made of; ``key`` is what the stores index by."""

    account: str
    principal: str
    method: str
    path: str  # canonical: /v2/..., no .json
    query_digest: str

    @property
    def key(self) -> str:
        return KEY_SEP.join((self.account, self.principal, self.method, self.path,
                             self.query_digest))  # fmt: skip


def normal_query(raw_query: str) -> str:
    """The query without identity params, pairs sorted, encoding normalised."""
    if not raw_query:
        return ""
    pairs = [(k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True)
             if k not in IDENTITY_PARAMS]  # fmt: skip
    pairs.sort()
    return urlencode(pairs)


@functools.lru_cache(maxsize=4096)  # pure, and the same queries come back again and again
def query_digest(raw_query: str, public_origin: str = "") -> str:
    """The sorted query, and the origin the body's links point at (callers reaching the gateway
    by different hosts get their own links, so they cannot share one stored body)."""
    normal = normal_query(raw_query)
    if not normal and not public_origin:
        return "-"
    return hashlib.sha256(f"{normal}\x00{public_origin}".encode()).hexdigest()[:24]


def key_parts(
    *,
    account: str | None,
    principal: str | None,
    method: str,
    path: str,
    raw_query: str,
    public_origin: str = "",
) -> KeyParts | None:
    """The key of a request, or None when it has no identifiable credential (never cached)."""
    if not account or not principal:
        return None
    digest = query_digest(raw_query, public_origin)
    return KeyParts(account, principal, method, canonical_path(path), digest)


def path_of_key(key: str) -> str:
    return key.split(KEY_SEP, 4)[3]


def account_of_key(key: str) -> str:
    return key.split(KEY_SEP, 1)[0]


@functools.lru_cache(maxsize=256)
def directive(cache_control: str | None, pragma: str | None = None) -> Directive:
    """What the caller's request headers ask of the cache."""
    tokens = {t.strip().split("=", 1)[0].lower() for t in (cache_control or "").split(",")}
    if "no-store" in tokens:
        return Directive.NO_STORE
    if "no-cache" in tokens or "max-age=0" in (cache_control or "").replace(" ", "").lower():
        return Directive.REFRESH
    if pragma and "no-cache" in pragma.lower() and not cache_control:
        return Directive.REFRESH
    return Directive.USE


def none_match(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` lists ``etag`` (or is ``*``), by RFC 9110's weak comparison:
    ``W/"x"`` and ``"x"`` match. The opaque tags hold no commas in practice (Harvest's are hex)."""
    wanted = if_none_match.strip()
    if wanted == "*":
        return True
    ours = etag.strip().removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in wanted.split(","))


# What a 304 carries of the stored answer's headers (RFC 9110 §15.4.5): its validators and
# caching metadata, not its body's framing.
NOT_MODIFIED_HEADERS: Final = frozenset({"cache-control", "content-location", "date", "etag",
                                         "expires", "vary"})  # fmt: skip


def not_modified_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() in NOT_MODIFIED_HEADERS)


def rule_for(rules: CacheRules, method: str, template: str) -> CacheRule | None:
    """The freshness rule of a GET on ``template``; None when the route is not cached."""
    if method != "GET":
        return None
    rule = rules.rule_for(template)
    return rule if rule is not None and rule.ttl > 0 else None


@dataclass(frozen=True, slots=True)
class Freshness:
    age: float  # seconds since stored (never negative)
    fresh: bool
    servable_stale: bool  # past ttl, within the stale allowance


def freshness(stored_at: float, ttl: float, stale: float, now: float) -> Freshness:
    age = max(0.0, now - stored_at)
    return Freshness(age=age, fresh=age < ttl, servable_stale=ttl <= age < ttl + stale)


def lifetime(rule: CacheRule) -> float:
    """How long a store keeps an entry: fresh time plus the stale allowance."""
    return rule.ttl + rule.stale


def storable(status: int, body: bytes | None, headers: Iterable[tuple[str, str]],
             max_entry_bytes: int) -> bool:  # fmt: skip
    """Only whole 200 responses are stored (no Set-Cookie-bound or oversized bodies)."""
    if status != 200 or body is None or len(body) > max_entry_bytes:
        return False
    return all(k.lower() != "set-cookie" for k, _ in headers)


def stored_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() not in NOT_STORED)


def revalidated_headers(
    stored: tuple[tuple[str, str], ...], fresh: Iterable[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """A stored answer's headers after a 304: the 304's own (its ``Date``, ``ETag``...) replace
    those of the same name (RFC 9111 §4.3.4); framing and per-request ones are not taken."""
    new = stored_headers(fresh)
    names = {k.lower() for k, _ in new}
    return tuple((k, v) for k, v in stored if k.lower() not in names) + new


def collection_root(path: str) -> str:
    """``/v2/time_entries/5/stop`` → ``/v2/time_entries``: a write's blast radius starts here."""
    parts = canonical_path(path).split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else canonical_path(path)


def invalidation_prefixes(rules: CacheRules, path: str) -> tuple[str, ...]:
    """Path prefixes whose entries a successful write to ``path`` makes wrong.

    The written collection (item, pages, sub-resources) plus what the policy says derives from it
    (time entries → time reports, ...). Over-invalidating costs a miss; under-invalidating
    serves wrong data, so the collection root is always included.
    """
    root = collection_root(path)
    out = [root]
    for source, targets in rules.invalidates:
        if prefix_matches(source, root) or prefix_matches(root, source):
            out.extend(targets)
    return tuple(dict.fromkeys(out))


def prefix_matches(prefix: str, path: str) -> bool:
    """Segment-aware prefix test: ``/v2/users`` covers ``/v2/users/me``, not ``/v2/users_x``."""
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or prefix.endswith("/") or path[len(prefix)] == "/"


def key_matches(key: str, account: str | None, prefixes: tuple[str, ...] | None) -> bool:
    """Does a purge/invalidation of (account, prefixes) cover ``key``? None means any."""
    if account is not None and account_of_key(key) != account:
        return False
    if prefixes is None:
        return True
    path = path_of_key(key)
    return any(prefix_matches(p, path) for p in prefixes)


def normal_prefix(prefix: str) -> str:
    """Admin input: ``/api/v2/x`` and ``/v2/x.json`` name the same entries as ``/v2/x``."""
    p = prefix.strip()
    if p.startswith("/api/v2"):
        p = p[len("/api") :]
    # A trailing slash is kept: "/v2/reports/" names what lies under it, as the admin wrote.
    return canonical_path(p) if p and not p.endswith("/") else p


def age_header(age: float) -> int:
    return int(age)
