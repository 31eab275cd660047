"""Harvest's header rules as pure functions: who is calling, and would Harvest refuse it?

Every refusal here is answered locally: it never reaches Harvest and never spends quota.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.policy.schema import GetBody, HeaderRules

# RFC 9110 §7.6.1 plus the conventional extras; fields named in Connection go too.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVALID_TOKEN = (
    "The access token provided is expired, revoked, malformed or invalid for other reasons."
)
# What Harvest's OAuth layer sends with that 401; clients that read the challenge get the same.
INVALID_TOKEN_CHALLENGE = (
    f'Bearer realm="Rack::OAuth2 Protected Resources", error="invalid_token", '
    f'error_description="{_INVALID_TOKEN}"'
)


@dataclass(frozen=True, slots=True)
class Reject:
    status: int
    error: str
    description: str


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request speaks for. ``principal`` is a digest, never the token itself."""

    account_id: str | None
    principal: str | None
    user_agent: str | None  # the User-Agent to send upstream (the caller's or the default)
    strip_body: bool = False


def hop_by_hop(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The lower-cased names that must not cross the proxy, including those listed in Connection."""
    return named_by_connection(
        tuple(value for name, value in headers if name.lower() == "connection")
    )


@functools.lru_cache(maxsize=256)  # pure and hot: a few distinct Connection values recur
def named_by_connection(
    connection: tuple[str, ...], also: frozenset[str] = frozenset()
) -> frozenset[str]:
    """``HOP_BY_HOP``, ``also``, and the fields the ``Connection`` header values name."""
    names = set(HOP_BY_HOP) | also
    for value in connection:
        names.update(t.strip().lower() for t in value.split(",") if t.strip())
    return frozenset(names)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@functools.lru_cache(maxsize=4096)  # one SHA-256 per distinct caller, not per request
def principal_of(token: str, account_id: str | None) -> str:
    """A stable, non-reversible identity for cache keys and fairness; never logged raw."""
    digest = hashlib.sha256(f"{account_id or ''}\x00{token}".encode()).hexdigest()
    return digest[:32]


def identify(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, account id) from the header form or the query-string form Harvest accepts."""
    token = bearer_token(headers.get("Authorization")) or query.get("access_token") or None
    account = headers.get("Harvest-Account-Id") or query.get("account_id") or None
    return token, (account.strip() if account else None)


def claimed_account(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The account id a request names, if well formed: for the log line of a request refused
    before it became an ``Exchange``."""
    account = identify(headers, query)[1]
    return account if account and _ACCOUNT_ID.match(account) else None


def account_problem(account: str | None) -> Reject | None:
    """Why an account id (header or query form) cannot be used, or None."""
    if not account:
        return Reject(
            401,
            "invalid_token",
            "No account id: send a Harvest-Account-Id header or an account_id parameter.",
        )
    if not _ACCOUNT_ID.match(account):
        return Reject(400, "invalid_account_id", "The Harvest account id is malformed.")
    return None


def check_api_request(
    *,
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: bytes,
    rules: HeaderRules,
    needs_account: bool = True,
) -> Reject | Caller:
    """Validate a request bound for the Harvest API the way Harvest would."""
    user_agent = headers.get("User-Agent", "").strip() or None
    if user_agent is None:
        if rules.require_user_agent and not rules.default_user_agent:
            return Reject(
                400,
                "missing_user_agent",
                "Harvest requires a User-Agent naming your app and a contact, "
                "e.g. 'MyApp (you@example.com)'.",
            )
        user_agent = rules.default_user_agent
    token, account = identify(headers, query)
    if needs_account:
        if token is None:
            return Reject(401, "invalid_token", _INVALID_TOKEN + " (no Bearer token was sent)")
        problem = account_problem(account)
        if problem is not None:
            return problem
    strip = False
    if body and method in ("GET", "HEAD"):
        if rules.get_with_body is GetBody.REJECT:
            return Reject(400, "get_with_body", "HTTP GET requests with a body are not accepted.")
        strip = True
    if body and not strip and rules.validate_json and _is_json(headers.get("Content-Type")):
        why = json_problem(body)
        if why:
            return Reject(400, "invalid_json", f"The request body is not valid JSON: {why}")
    return Caller(
        account_id=account,
        principal=principal_of(token, account) if token else None,
        user_agent=user_agent,
        strip_body=strip,
    )


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def json_problem(body: bytes) -> str | None:
    try:
        json.loads(body)
    except UnicodeDecodeError:
        return "it is not UTF-8"
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return None
