"""Policy TOML text → ``Policy``. Errors name the file and the key path."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.policy.schema import (
    CacheRule,
    CacheRules,
    GetBody,
    HeaderRules,
    Policy,
    QueueRules,
    QuotaRule,
    RedactionRules,
)

DEFAULT_POLICY = "harvest-v2.toml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB)?\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZES = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


class PolicyError(ValueError):
    pass


def parse_duration(value: object, where: str = "duration") -> float:
    """``"15s"``, ``"15m"``, ``"50ms"`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise PolicyError(f"{where}: {value!r} is not a duration like 15s, 15m or 50ms")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_size(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise PolicyError(f"{where}: {value!r} is not a size like 64MB")
    return int(m.group(1)) * _SIZES[(m.group(2) or "b").lower()]


def parse_quota_override(text: str) -> tuple[str, int, float]:
    """``NAME=N/W`` (``general=100/15s``) → (name, limit, window seconds)."""
    m = re.match(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(\d+)\s*/\s*(\S+)\s*$", text)
    if not m:
        raise PolicyError(f"--quota {text!r}: expected NAME=N/W, e.g. general=100/15s")
    limit = int(m.group(2))
    if limit < 1:
        raise PolicyError(f"--quota {text!r}: N must be at least 1")
    window = parse_duration(m.group(3), f"--quota {text!r}")
    if window <= 0:
        raise PolicyError(f"--quota {text!r}: W must be positive")
    return m.group(1), limit, window


def _table(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where}.{key}: expected a table")
    return value


def _strs(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: expected a list of strings")
    return tuple(value)


def _headers(doc: Mapping[str, Any], where: str) -> HeaderRules:
    inject = _table(doc, "inject", where)
    try:
        get_body = GetBody(doc.get("get_with_body", "reject"))
    except ValueError as exc:
        raise PolicyError(f"{where}.get_with_body: expected 'reject' or 'strip'") from exc
    default_ua = doc.get("default_user_agent") or None
    return HeaderRules(
        require_user_agent=bool(doc.get("require_user_agent", True)),
        default_user_agent=str(default_ua) if default_ua else None,
        get_with_body=get_body,
        inject=tuple((str(k), str(v)) for k, v in inject.items()),
        validate_json=bool(doc.get("validate_json", True)),
    )


def _quotas(doc: Mapping[str, Any], where: str) -> tuple[QuotaRule, ...]:
    rules = []
    for name, body in doc.items():
        at = f"{where}.{name}"
        if not isinstance(body, Mapping):
            raise PolicyError(f"{at}: expected a table")
        limit = body.get("limit")
        if not isinstance(limit, int) or limit < 1:
            raise PolicyError(f"{at}.limit: expected a positive integer")
        rules.append(
            QuotaRule(
                name=name,
                limit=limit,
                window=parse_duration(body.get("window"), f"{at}.window"),
                prefixes=_strs(body.get("prefixes", [""]), f"{at}.prefixes"),
                methods=tuple(m.upper() for m in _strs(body.get("methods", []), f"{at}.methods")),
                priorities=tuple(
                    p.lower() for p in _strs(body.get("priorities", []), f"{at}.priorities")
                ),
            )
        )
    return tuple(rules)


def _queue(doc: Mapping[str, Any], where: str) -> QueueRules:
    d = QueueRules()
    return QueueRules(
        max_wait=parse_duration(doc.get("max_wait", d.max_wait), f"{where}.max_wait"),
        max_queue=int(doc.get("max_queue", d.max_queue)),
        margin=parse_duration(doc.get("margin", d.margin), f"{where}.margin"),
        default_penalty=parse_duration(
            doc.get("default_penalty", d.default_penalty), f"{where}.default_penalty"
        ),
        max_retries=int(doc.get("max_retries", d.max_retries)),
        upstream_retries=int(doc.get("upstream_retries", d.upstream_retries)),
        retry_backoff=parse_duration(
            doc.get("retry_backoff", d.retry_backoff), f"{where}.retry_backoff"
        ),
        fallback_share=_share(
            doc.get("fallback_share", d.fallback_share), f"{where}.fallback_share"
        ),
    )


def _share(value: object, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise PolicyError(f"{where}: expected a number in (0, 1], e.g. 0.34")
    return float(value)


def _cache(doc: Mapping[str, Any], where: str) -> CacheRules:
    d = CacheRules()
    rules = []
    for i, body in enumerate(doc.get("rules", [])):
        at = f"{where}.rules[{i}]"
        if not isinstance(body, Mapping) or not isinstance(body.get("prefix"), str):
            raise PolicyError(f"{at}: expected a table with a 'prefix' string")
        rules.append(
            CacheRule(
                prefix=body["prefix"],
                ttl=parse_duration(body.get("ttl", 0), f"{at}.ttl"),
                stale=parse_duration(body.get("stale", 0), f"{at}.stale"),
            )
        )
    inval = _table(doc, "invalidates", where)
    return CacheRules(
        rules=tuple(rules),
        max_entries=int(doc.get("max_entries", d.max_entries)),
        max_bytes=parse_size(doc.get("max_bytes", d.max_bytes), f"{where}.max_bytes"),
        max_entry_bytes=parse_size(
            doc.get("max_entry_bytes", d.max_entry_bytes), f"{where}.max_entry_bytes"
        ),
        invalidates=tuple((str(k), _strs(v, f"{where}.invalidates.{k}")) for k, v in inval.items()),
        near_ttl=parse_duration(doc.get("near_ttl", d.near_ttl), f"{where}.near_ttl"),
    )


def _redaction(doc: Mapping[str, Any], where: str) -> RedactionRules:
    d = RedactionRules()

    def lower(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        extra = _strs(doc.get(key, []), f"{where}.{key}")
        return tuple(dict.fromkeys([*default, *(e.lower() for e in extra)]))

    return RedactionRules(
        headers=lower("headers", d.headers),
        query=lower("query", d.query),
        body_fields=lower("body_fields", d.body_fields),
    )


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    return Policy(
        name=str(doc.get("name", "custom")),
        headers=_headers(_table(doc, "headers", source), f"{source}: headers"),
        quotas=_quotas(_table(doc, "quotas", source), f"{source}: quotas"),
        queue=_queue(_table(doc, "queue", source), f"{source}: queue"),
        cache=_cache(_table(doc, "cache", source), f"{source}: cache"),
        redaction=_redaction(_table(doc, "redaction", source), f"{source}: redaction"),
    )


def load_policy(path: str | Path | None) -> Policy:
    """Load a policy file, or the shipped Harvest v2 policy when ``path`` is None."""
    if path is None:
        text = resources.files("gateway.policies").joinpath(DEFAULT_POLICY).read_text("utf-8")
        return parse_policy(text, f"(shipped) {DEFAULT_POLICY}")
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"{p}: cannot read the policy file: {exc.strerror}") from exc
    return parse_policy(text, str(p))


def with_quota_overrides(policy: Policy, overrides: list[tuple[str, int, float]]) -> Policy:
    """Apply ``--quota NAME=N/W``; an unknown NAME adds a quota covering every request."""
    quotas = {q.name: q for q in policy.quotas}
    for name, limit, window in overrides:
        base = quotas.get(name, QuotaRule(name=name, limit=limit, window=window))
        quotas[name] = replace(base, limit=limit, window=window)
    return replace(policy, quotas=tuple(quotas.values()))
