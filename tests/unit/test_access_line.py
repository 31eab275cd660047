"""The access line's template writes exactly what the structlog processors would, and leaves
any line that might hold a secret to them."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.telemetry.logging import REDACTED, AccessLogger, IsoClock, LineWriter

ORDER = ("request_id", "account_id", "method", "route", "status", "duration_ms",
         "queue_wait_ms", "upstream_ms", "upstream_attempts", "cache")  # fmt: skip
_finite = st.floats(allow_nan=False, allow_infinity=False)
_fields = st.fixed_dictionaries(
    {
        "request_id": st.text(),
        "account_id": st.none() | st.text(),
        "method": st.sampled_from(["GET", "POST", "PATCH", "DELETE"]) | st.text(min_size=1),
        "route": st.sampled_from(["/v2/users/me", "/v2/time_entries/{id}"]) | st.text(),
        "status": st.integers(100, 599),
        "duration_ms": _finite,
        "queue_wait_ms": st.integers(0, 10**6) | _finite,
        "upstream_ms": st.none() | _finite,
        "upstream_attempts": st.none() | st.integers(1, 5),
        "cache": st.sampled_from(["HIT", "MISS", "none"]) | st.text(),
    }
)


def logger(fmt: str = "json") -> tuple[AccessLogger, StringIO]:
    stream = StringIO()  # outside an event loop, LineWriter writes each line at once
    clock = IsoClock(lambda: 1_764_288_000_123_456_789)
    return AccessLogger(fmt, LineWriter(stream), clock=clock), stream


@given(_fields)
def test_the_template_line_is_the_processors_line(fields: dict[str, Any]) -> None:
    fast, fast_out = logger()
    fast.request(**fields)
    slow, slow_out = logger()
    # The structlog processors, as for every other line, over the fields in the line's order.
    slow({**{k: fields[k] for k in ORDER}, "event": "request"})
    assert fast_out.getvalue() == slow_out.getvalue()
    assert json.loads(fast_out.getvalue())["request_id"] == fields["request_id"]


def test_a_line_that_might_hold_a_secret_is_redacted() -> None:
    access, out = logger()
    common: dict[str, Any] = {
        "method": "GET", "route": "/v2/users/me", "status": 200, "duration_ms": 1.5,
        "queue_wait_ms": 0, "upstream_ms": None, "upstream_attempts": None, "cache": "MISS",
    }  # fmt: skip
    access.request(request_id="Bearer s3cr3t-value", account_id="1", **common)
    access.request(request_id="r1", account_id="access_token=s3cr3t-value", **common)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "s3cr3t-value" not in out.getvalue()
    assert REDACTED in lines[0]["request_id"]
    assert REDACTED in lines[1]["account_id"]


def test_timestamps_are_utc_iso_with_microseconds() -> None:
    assert IsoClock(lambda: 1_764_288_000_123_456_789)() == "2025-11-28T00:00:00.123456Z"
    assert IsoClock(lambda: 1_764_288_001_000_001_999)() == "2025-11-28T00:00:01.000001Z"


def test_console_lines_go_through_the_console_renderer() -> None:
    access, out = logger("console")
    access.request(request_id="r1", account_id="1", method="GET", route="/v2/users/me",
                   status=200, duration_ms=1.5, queue_wait_ms=0, upstream_ms=None,
                   upstream_attempts=None, cache="HIT")  # fmt: skip
    text = out.getvalue()
    assert "request" in text
    assert "route=/v2/users/me" in text
    assert not text.startswith("{")


@given(_fields)
def test_a_fixed_line_is_the_request_line(fields: dict[str, Any]) -> None:
    # A hit's line: GET, no queueing, no upstream; only its request id and duration vary.
    hit = {**fields, "method": "GET", "queue_wait_ms": 0, "upstream_ms": None,
           "upstream_attempts": None}  # fmt: skip
    fixed, fixed_out = logger()
    line = fixed.fixed(account_id=hit["account_id"], route=hit["route"], status=hit["status"],
                       cache=hit["cache"])  # fmt: skip
    line.write(hit["request_id"], hit["duration_ms"])
    line.write("second-id", 0.25)
    full, full_out = logger()
    full.request(**hit)
    full.request(**{**hit, "request_id": "second-id", "duration_ms": 0.25})
    assert fixed_out.getvalue() == full_out.getvalue()


def test_a_fixed_line_redacts_a_request_id_that_might_hold_a_secret() -> None:
    access, out = logger()
    line = access.fixed(account_id="1", route="/v2/users/me", status=200, cache="HIT")
    line.write("Bearer s3cr3t-value", 0.5)
    assert "s3cr3t-value" not in out.getvalue()
    assert REDACTED in json.loads(out.getvalue())["request_id"]
