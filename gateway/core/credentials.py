"""Managed credentials as pure decisions: which caller key is this, and may it do that?

In managed mode callers never hold a Harvest token. They present a gateway key (stored only as
its SHA-256 digest), scoped to accounts and methods; the gateway swaps it for the account's
Harvest token. Loading the file that describes keys and tokens lives in
``gateway.credentials_file``; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.core.headers import Reject, account_problem, bearer_token

DIGEST = re.compile(r"^[0-9a-f]{64}$")
ANY_ACCOUNT = "*"


def hash_key(key: str) -> str:
    """The SHA-256 hex digest a credentials file stores for a caller key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerKey:
    name: str  # for logs and metrics; never the key
    digest: str  # lower-case SHA-256 hex of the key
    accounts: frozenset[str]  # account ids, or {"*"} for every configured account
    methods: frozenset[str]  # upper-case HTTP methods

    def allows_account(self, account_id: str) -> bool:
        return ANY_ACCOUNT in self.accounts or account_id in self.accounts


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    keys: tuple[CallerKey, ...]
    tokens: Mapping[str, str]  # account id → Harvest token (resolved from env or file)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """A managed request that may go upstream, and as whom."""

    key_name: str
    account_id: str
    principal: str  # cache and quota identity: the caller key and the account, never the token
    authorization: str  # the Authorization header to send upstream


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The caller's gateway key: ``X-Gateway-Key``, else ``Authorization: Bearer``."""
    given = headers.get("X-Gateway-Key", "").strip()
    return given or bearer_token(headers.get("Authorization"))


def find_key(keys: tuple[CallerKey, ...], key: str) -> CallerKey | None:
    """Compare the key's digest with every stored digest in constant time, and scan them all."""
    digest = hash_key(key).encode()
    found: CallerKey | None = None
    for candidate in keys:
        if hmac.compare_digest(digest, candidate.digest.encode()) and found is None:
            found = candidate
    return found


def managed_principal(key: CallerKey, account_id: str) -> str:
    digest = hashlib.sha256(f"managed\x00{key.digest}\x00{account_id}".encode()).hexdigest()
    return digest[:32]


_NO_KEY = "No gateway key was sent: send 'Authorization: Bearer <gateway key>' or 'X-Gateway-Key'."
_BAD_KEY = "The gateway key is not valid."


def authorize(
    creds: Credentials,
    *,
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
) -> Reject | Grant:
    """Decide a managed-mode API request: 401 without a known key, 403 outside its scope.

    Errors use Harvest's own 401/403 shapes' codes so clients handle them as they would Harvest's.
    """
    if "access_token" in query:
        # A Harvest token in the query would bypass the key and reach Harvest as-is.
        return Reject(400, "access_token_not_allowed", "This gateway holds the Harvest tokens: "
                      "send a gateway key, not an access_token parameter.")  # fmt: skip
    key = presented_key(headers)
    if key is None:
        return Reject(401, "invalid_token", _NO_KEY)
    caller = find_key(creds.keys, key)
    if caller is None:
        return Reject(401, "invalid_token", _BAD_KEY)
    header_account = headers.get("Harvest-Account-Id", "").strip()
    query_account = query.get("account_id", "").strip()
    if header_account and query_account and header_account != query_account:
        return Reject(400, "invalid_account_id", "Harvest-Account-Id and account_id differ.")
    account = header_account or query_account
    problem = account_problem(account)
    if problem is not None:
        return problem
    if not caller.allows_account(account) or account not in creds.tokens:
        return Reject(403, "forbidden", f"This gateway key may not act on account {account}.")
    if method.upper() not in caller.methods:
        return Reject(403, "forbidden", f"This gateway key may not send {method.upper()} requests.")
    return Grant(
        key_name=caller.name,
        account_id=account,
        principal=managed_principal(caller, account),
        authorization=f"Bearer {creds.tokens[account]}",
    )
