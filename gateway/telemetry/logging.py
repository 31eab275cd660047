"""structlog, configured per app (no global configure): JSON by default, console on request.

Redaction runs before rendering, so no processor downstream can leak a credential.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_KEYS = re.compile(
    r"(authorization|access_token|refresh_token|client_secret|password|cookie|token|secret)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',]+")
_QUERY_SECRET = re.compile(r"(?i)((?:access_token|refresh_token|client_secret)=)[^&\s\"']+")
# The same fields inside a JSON text (a logged body): "access_token": "value".
_JSON_SECRET = re.compile(
    r"(?i)(\"(?:access_token|refresh_token|client_secret|password)\"\s*:\s*\")(?:[^\"\\]|\\.)*"
)
# One cheap search decides whether a string needs the substitutions at all (most do not).
_MAY_HOLD_SECRET = re.compile(r"(?i)bearer|token|secret|password")
REDACTED = "[REDACTED]"


def redact_value(value: str) -> str:
    if not _MAY_HOLD_SECRET.search(value):
        return value
    value = _BEARER.sub("Bearer " + REDACTED, value)
    return _JSON_SECRET.sub(r"\1" + REDACTED, _QUERY_SECRET.sub(r"\1" + REDACTED, value))


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return bool(_SECRET_KEYS.search(key))


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_value(value)
    if isinstance(value, bytes | bytearray):  # a body: the renderer would repr() it unscrubbed
        return redact_value(bytes(value).decode("utf-8", "replace"))
    if depth > 4:
        return value
    if isinstance(value, Mapping):  # includes aiohttp's read-only header proxies
        return {
            k: (REDACTED if isinstance(k, str) and _secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Blank secret-named fields and scrub bearer tokens / token values from everything else.

    Runs on every log line, so the common case (flat, clean strings and numbers) costs a dict
    walk with one C-level regex probe per string.
    """
    for key, value in event_dict.items():
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:
            if _MAY_HOLD_SECRET.search(value):
                event_dict[key] = redact_value(value)
        elif value is not None and not isinstance(value, int | float):
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
