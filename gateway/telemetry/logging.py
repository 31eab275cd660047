"""structlog, configured per app (no global configure): JSON by default, console on request.

Redaction runs before rendering, so no processor downstream can leak a credential.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = re.compile(
    r"(authorization|access_token|refresh_token|client_secret|password|cookie|token|secret)",
    re.IGNORECASE,
)
_HINT = re.compile(r"(?i)bearer|token=|secret=")  # cheap pre-check before the real scrubbing
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',]+")
_QUERY_SECRET = re.compile(r"(?i)((?:access_token|refresh_token|client_secret)=)[^&\s\"']+")
REDACTED = "[REDACTED]"


def redact_value(value: str) -> str:
    if not _HINT.search(value):
        return value
    return _QUERY_SECRET.sub(r"\1" + REDACTED, _BEARER.sub("Bearer " + REDACTED, value))


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEYS.search(key))


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_value(value)
    if depth > 4:
        return value
    if isinstance(value, MutableMapping):
        return {
            k: (REDACTED if isinstance(k, str) and _secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Blank secret-named fields and scrub bearer tokens / token query values from strings.

    Runs on every log line, so the common case (flat, clean strings) is a dict walk with one
    C-level regex probe per string.
    """
    for key, value in event_dict.items():
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:
            if _HINT.search(value):
                event_dict[key] = redact_value(value)
        elif isinstance(value, MutableMapping | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def make_logger(
    fmt: str = "json", stream: TextIO | None = None
) -> structlog.typing.FilteringBoundLogger:
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    if fmt == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    else:
        processors.append(structlog.processors.JSONRenderer())
    logger: structlog.typing.FilteringBoundLogger = structlog.wrap_logger(
        structlog.PrintLogger(stream or sys.stdout),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return logger
