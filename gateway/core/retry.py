"""When a failed upstream exchange may be sent again, and after how long: pure decisions.

Only a request that cannot change anything is retried (GET, HEAD, OPTIONS): a write that met a
502, a 503 or a reset may well have been applied by Harvest, and sending it twice could
duplicate a time entry. Only transient failures are retried: Harvest's 502/503/504 and a
connection that failed or was cut short. Not a 500 (a bug upstream answers the same again),
not a 429 (the admission stage owns those), not a timeout (a slow Harvest gets slower when
asked twice, and the caller has already waited a whole read timeout).
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# The gateway's own error codes for a connection refused, reset or a body cut short.
RETRYABLE_ERRORS = frozenset({"upstream_unavailable"})


@dataclass(frozen=True, slots=True)
class RetryRules:
    retries: int = 2  # extra attempts after the first
    backoff: float = 0.1  # seconds before the first retry; doubles after each
    max_delay: float = 1.0  # a longer Retry-After from Harvest is not waited out here


def may_retry(method: str) -> bool:
    return method.upper() in SAFE_METHODS


def retry_delay(
    rules: RetryRules,
    *,
    method: str,
    attempt: int,
    status: int | None = None,
    error: str | None = None,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (attempts count from 0), or None.

    ``status`` is Harvest's answer, ``error`` the gateway's error code when there was none.
    """
    if not may_retry(method) or attempt >= rules.retries:
        return None
    if status is not None and status not in RETRYABLE_STATUSES:
        return None
    if status is None and error not in RETRYABLE_ERRORS:
        return None
    delay: float = rules.backoff * 2.0**attempt
    if retry_after is not None:
        if retry_after > rules.max_delay:
            return None  # Harvest asks for longer than a caller should be held: pass it on
        delay = max(delay, retry_after)
    return min(delay, rules.max_delay)
