"""The policy document: plain frozen data, read once at startup (see ``load.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class GetBody(StrEnum):
    REJECT = "reject"  # answer 400 as Harvest does
    STRIP = "strip"  # drop the body and forward


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderRules:
    require_user_agent: bool = True
    # When set, injected for callers that send no User-Agent instead of answering 400.
    default_user_agent: str | None = None
    get_with_body: GetBody = GetBody.REJECT
    inject: tuple[tuple[str, str], ...] = ()
    validate_json: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaRule:
    name: str
    limit: int
    window: float  # seconds
    # Route-template prefixes this quota covers; "" covers everything.
    prefixes: tuple[str, ...] = ("",)
    methods: tuple[str, ...] = ()  # empty: all methods
    # X-Gateway-Priority classes this quota caps (e.g. batch ≤ 60/15s); empty: every class.
    priorities: tuple[str, ...] = ()

    def applies(self, method: str, template: str, priority: str | None = None) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.priorities and priority not in self.priorities:
            return False
        return any(template.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRules:
    max_wait: float = 60.0  # seconds a request may wait for a slot before 503
    max_queue: int = 10_000  # queued requests per replica
    margin: float = 0.05  # seconds added to every slot, for network jitter
    default_penalty: float = 15.0  # block after a 429 without Retry-After
    max_retries: int = 8  # upstream 429s absorbed per request before answering 503
    upstream_retries: int = 2  # extra tries of a GET/HEAD/OPTIONS after a 502/503/504 or reset
    retry_backoff: float = 0.1  # seconds before the first of them; doubles each time
    # Share of each quota one replica uses while Redis is unreachable (≈ 1 / replicas).
    fallback_share: float = 1 / 3


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRule:
    prefix: str  # route-template prefix, e.g. "/v2/company" or "/v2/reports/"
    ttl: float  # seconds fresh
    stale: float = 0.0  # seconds after expiry a stale copy may still be served


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRules:
    rules: tuple[CacheRule, ...] = ()
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    max_entry_bytes: int = 4 * 1024 * 1024
    # With Redis: how long each replica's memory tier may answer for the shared one.
    near_ttl: float = 2.0
    # A write to a collection drops entries under these extra prefixes too.
    invalidates: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def rule_for(self, template: str) -> CacheRule | None:
        best: CacheRule | None = None
        for rule in self.rules:
            if template.startswith(rule.prefix) and (
                best is None or len(rule.prefix) > len(best.prefix)
            ):
                best = rule
        return best


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactionRules:
    headers: tuple[str, ...] = ("authorization", "cookie", "set-cookie", "proxy-authorization")
    query: tuple[str, ...] = ("access_token", "account_id", "refresh_token", "client_secret")
    body_fields: tuple[str, ...] = (
        "access_token",
        "refresh_token",
        "client_secret",
        "password",
        "code",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    name: str = "harvest-v2"
    headers: HeaderRules = field(default_factory=HeaderRules)
    quotas: tuple[QuotaRule, ...] = ()
    queue: QueueRules = field(default_factory=QueueRules)
    cache: CacheRules = field(default_factory=CacheRules)
    redaction: RedactionRules = field(default_factory=RedactionRules)

    def quotas_for(self, method: str, template: str) -> tuple[QuotaRule, ...]:
        return tuple(q for q in self.quotas if q.applies(method, template))
