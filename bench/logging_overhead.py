"""Cost of one request log line: the gateway's logger against the same pipeline without redaction.

python -m bench.logging_overhead
"""

from __future__ import annotations

import io
import time
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from gateway.telemetry.logging import make_logger

N = 20_000
FIELDS: dict[str, Any] = {
    "account_id": "123456", "method": "GET", "route": "/v2/time_entries/{id}", "status": 200,
    "duration_ms": 12.34, "queue_wait_ms": 0, "upstream_ms": 11.9, "cache": "MISS",
}  # fmt: skip


def baseline(stream: io.StringIO) -> Any:
    return structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),
    )


def per_line(log: Any) -> float:
    started = time.perf_counter()
    for i in range(N):
        with bound_contextvars(request_id=f"req-{i}"):
            log.info("request", **FIELDS)
    return (time.perf_counter() - started) / N


def main() -> None:
    base = min(per_line(baseline(io.StringIO())) for _ in range(3))
    json_ = min(per_line(make_logger("json", io.StringIO())) for _ in range(3))
    console = min(per_line(make_logger("console", io.StringIO())) for _ in range(3))
    print(f"baseline (no redaction, JSON): {base * 1e6:.1f} us/line")  # noqa: T201
    print(f"gateway JSON (redacted):       {json_ * 1e6:.1f} us/line  ({json_ / base:.2f}x)")  # noqa: T201
    print(f"gateway console (redacted):    {console * 1e6:.1f} us/line  ({console / base:.2f}x)")  # noqa: T201


if __name__ == "__main__":
    main()
