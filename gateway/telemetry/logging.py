"""structlog, configured per app (no global configure): JSON by default, console on request.

Redaction runs before rendering, so no processor downstream can leak a credential.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import sys
import time
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
# One cheap probe decides whether a string needs the substitutions at all (most do not).
_HINTS = ("bearer", "token", "secret", "password")
REDACTED = "[REDACTED]"
Logger = structlog.typing.FilteringBoundLogger


def _may_hold_secret(text: str) -> bool:
    # casefold and substring tests: ten times faster than one case-insensitive regex search,
    # and they fold the same characters (a long s is an s) as the substitutions' (?i) does.
    folded = text.casefold()
    return any(hint in folded for hint in _HINTS)


def redact_value(value: str) -> str:
    if not _may_hold_secret(value):
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
    walk and one substring probe over all the line's strings together.
    """
    strings = []
    for key, value in event_dict.items():
        if _secret_key(key):
            event_dict[key] = REDACTED
        elif type(value) is str:
            strings.append(value)
        elif value is not None and not isinstance(value, int | float):
            event_dict[key] = _scrub(value)
    if strings and _may_hold_secret("\n".join(strings)):  # one probe for the whole line
        for key, value in event_dict.items():
            if type(value) is str:
                event_dict[key] = redact_value(value)
    return event_dict


class LineWriter:
    """structlog's output: lines batched per event-loop tick, then one write and one flush.

    ``PrintLogger`` flushes every line (a syscall each); under load many requests finish in one
    loop iteration, so batching them costs at most one tick of delay and loses nothing on a clean
    shutdown (``flush`` runs from the app's cleanup). Outside a running loop it writes at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._scheduled = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def msg(self, message: str) -> None:
        self._pending.append(message)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def _timestamper() -> Processor:
    """ISO-8601 UTC timestamps, formatting the seconds part once per second (it is hot)."""
    cached: list[Any] = [-1, ""]

    def stamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        whole = int(now)
        if whole != cached[0]:
            cached[0] = whole
            cached[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        event_dict["timestamp"] = f"{cached[1]}.{int((now - whole) * 1e6):06d}Z"
        return event_dict

    return stamp


def _json_renderer() -> Processor:
    """structlog's JSONRenderer, minus a new ``JSONEncoder`` per line (``json.dumps`` builds one
    whenever ``default`` is given)."""
    encode = json.JSONEncoder(default=_fallback).encode

    def render(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
        return encode(event_dict)

    return render


def _fallback(value: Any) -> Any:
    structlog_repr = getattr(value, "__structlog__", None)
    return structlog_repr() if structlog_repr is not None else repr(value)


def make_logger(
    fmt: str = "json",
    stream: TextIO | None = None,
    writer: LineWriter | None = None,
    *,
    merge_context: bool = True,
) -> structlog.typing.FilteringBoundLogger:
    """``merge_context=False`` for the access line, whose calls pass every field themselves
    (merging walks the whole context on each line) and never an exception."""
    processors: list[Processor] = [structlog.contextvars.merge_contextvars] if merge_context else []
    processors += [structlog.processors.add_log_level, _timestamper()]
    if merge_context:  # the access line never carries an exception
        processors.append(structlog.processors.format_exc_info)
    processors.append(redact_processor)
    if fmt == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    else:
        processors.append(_json_renderer())
    logger: structlog.typing.FilteringBoundLogger = structlog.wrap_logger(
        writer or LineWriter(stream),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return logger
