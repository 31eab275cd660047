"""Errors the gateway answers itself, always as JSON ``{"error", "error_description", ...}``.

GatewayError
├── BadRequest (400)          malformed request, GET with a body, bad JSON
├── Unauthorized (401)        no credential (Harvest's own shape)
├── NotFound (404)            not a gateway or Harvest path
├── PayloadTooLarge (413)
├── UpstreamUnavailable (502) upstream refused, reset or sent garbage
├── QuotaExhausted (503)      the wait for a quota slot would exceed the caller's maximum
└── UpstreamTimeout (504)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.core.quota import parse_retry_after


@dataclass(eq=False)
class GatewayError(Exception):
    status: int
    code: str
    description: str
    headers: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.detail}

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.description}"


def bad_request(code: str, description: str, **detail: Any) -> GatewayError:
    return GatewayError(400, code, description, detail=detail)


def upstream_unavailable(description: str) -> GatewayError:
    return GatewayError(502, "upstream_unavailable", description)


def upstream_timeout(description: str) -> GatewayError:
    return GatewayError(504, "upstream_timeout", description)


def upstream_rate_limited(
    retry_after_header: str | None, now_wall: float, penalty: float
) -> GatewayError:
    """The 503 that stands in for a Harvest 429 the gateway cannot wait out for its caller
    (no quota queue on the route, or a recorded 429 in replay): callers never see a 429. It
    says to come back after Harvest's ``Retry-After``, or after ``penalty`` without one."""
    retry_after = parse_retry_after(retry_after_header, now_wall)
    return quota_exhausted(
        "Harvest answered 429 (rate limited); try again after Retry-After.",
        retry_after=penalty if retry_after is None else retry_after,
        reason="upstream_rate_limited",
    )


def quota_exhausted(description: str, retry_after: float, **detail: Any) -> GatewayError:
    seconds = max(1, int(retry_after + 0.999))
    return GatewayError(
        503,
        "quota_wait_exceeded",
        description,
        headers={"Retry-After": str(seconds)},
        detail={"retry_after": seconds, **detail},
    )
