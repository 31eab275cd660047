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
from collections.abc import Callable, Mapping
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
# One cheap probe (_may_hold_secret) decides whether a string needs the substitutions at all.
REDACTED = "[REDACTED]"
Logger = structlog.typing.FilteringBoundLogger


def _may_hold_secret(text: str) -> bool:
    # casefold and substring tests: ten times faster than one case-insensitive regex search,
    # and they fold the same characters (a long s is an s) as the substitutions' (?i) does.
    folded = text.casefold()
    return "bearer" in folded or "token" in folded or "secret" in folded or "password" in folded


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


_PLAIN = frozenset({str, int, float, bool, type(None)})


@functools.lru_cache(maxsize=1024)  # keyed by a line's field names: a call site logs the same
def _secret_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(key for key in keys if _secret_key(key))


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Blank secret-named fields and scrub bearer tokens / token values from everything else.

    Runs on every log line, so the common case (flat, clean strings and numbers) costs a
    cached look at the field names and one substring probe over all the line's strings.
    """
    for key in _secret_keys(tuple(event_dict)):
        event_dict[key] = REDACTED
    if not _PLAIN.issuperset(map(type, event_dict.values())):  # in C: no bytecode per field
        for key in [k for k, v in event_dict.items() if type(v) not in _PLAIN]:
            event_dict[key] = _scrub(event_dict[key])  # containers, bytes, str subclasses
    strings = [v for v in event_dict.values() if type(v) is str]
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


class IsoClock:
    """ISO-8601 UTC timestamps with microseconds, formatting the seconds part once per second
    (it is hot: every line). ``now_ns`` is ``time.time_ns`` unless a test gives its own."""

    def __init__(self, now_ns: Callable[[], int] = time.time_ns) -> None:
        self._now_ns = now_ns
        self._seconds = ""  # the decimal seconds since the epoch last formatted
        self._prefix = ""

    def __call__(self) -> str:
        # Microseconds since the epoch as decimal text: its last six digits are the fraction,
        # already zero-padded, and the rest change once a second.
        micros = str(self._now_ns() // 1000)
        seconds = micros[:-6]
        if seconds != self._seconds:
            self._seconds = seconds
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(seconds)))
        return f"{self._prefix}.{micros[-6:]}Z"


def _timestamper(clock: IsoClock) -> Processor:
    def stamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict["timestamp"] = clock()
        return event_dict

    return stamp


def _json_renderer() -> Processor:
    """structlog's JSONRenderer without its per-line set-up.

    ``json.dumps`` with ``default`` builds a ``JSONEncoder`` per call, and ``encode`` builds the
    C encoder per call; this builds the C encoder once (same output as ``json.dumps``).
    """
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # a Python without the _json accelerator
        slow = json.JSONEncoder(default=_fallback).encode

        def render_slow(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
            return slow(event_dict)

        return render_slow
    # markers=None: no circular check (a log line is a flat dict of plain values).
    chunks = c_make_encoder(None, _fallback, json.encoder.encode_basestring_ascii, None,
                            ": ", ", ", False, False, True)  # fmt: skip

    def render(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
        return "".join(chunks(event_dict, 0))

    return render


def _fallback(value: Any) -> Any:
    structlog_repr = getattr(value, "__structlog__", None)
    return structlog_repr() if structlog_repr is not None else repr(value)


def _processors(
    fmt: str, *, access: bool = False, clock: IsoClock | None = None
) -> list[Processor]:
    # The access line passes every field itself (merging walks the whole context on each line)
    # and never carries an exception.
    processors: list[Processor] = [] if access else [structlog.contextvars.merge_contextvars]
    processors += [structlog.processors.add_log_level, _timestamper(clock or IsoClock())]
    if not access:
        processors.append(structlog.processors.format_exc_info)
    processors.append(redact_processor)
    if fmt == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    else:
        processors.append(_json_renderer())
    return processors


def make_logger(
    fmt: str = "json", stream: TextIO | None = None, writer: LineWriter | None = None
) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.wrap_logger(
        writer or LineWriter(stream),
        processors=_processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return logger


class AccessLogger:
    """The one line per request, as every other line would render it (level, timestamp,
    redaction, renderer), at a fraction of the cost.

    In JSON, a line whose strings cannot hold a secret (the redaction probe) is written from a
    fixed template: the same text the structlog processors produce. Any other line, and every
    console line, goes through the processors themselves.
    """

    def __init__(self, fmt: str, writer: LineWriter, clock: IsoClock | None = None) -> None:
        self._clock = clock or IsoClock()
        self._processors = _processors(fmt, access=True, clock=self._clock)
        self._writer = writer
        self._json = fmt == "json"

    def request(
        self,
        *,
        request_id: str,
        account_id: str | None,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        queue_wait_ms: float,
        upstream_ms: float | None,
        upstream_attempts: int | None,
        cache: str,
    ) -> None:
        if self._json and not _may_hold_secret(
            f"{request_id}\n{account_id}\n{method}\n{route}\n{cache}"
        ):
            head = _head(account_id, method, route, status)
            self.templated(request_id, head, duration_ms,
                           _tail(queue_wait_ms, upstream_ms, upstream_attempts, cache))  # fmt: skip
            return
        fields: EventDict = {
            "request_id": request_id,
            "account_id": account_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "queue_wait_ms": queue_wait_ms,
            "upstream_ms": upstream_ms,
            "upstream_attempts": upstream_attempts,
            "cache": cache,
            "event": "request",
        }
        self(fields)

    def fixed(self, *, account_id: str | None, route: str, status: int, cache: str) -> FixedLine:
        """The line of a GET answered without queueing or upstream (a cache hit), with all but
        its request id and duration rendered once."""
        template = None
        if self._json and not _may_hold_secret(f"{account_id}\n{route}\n{cache}"):
            template = (_head(account_id, "GET", route, status), _tail(0, None, None, cache))
        return FixedLine(self, account_id, route, status, cache, template)

    def templated(self, request_id: str, head: str, duration_ms: float, tail: str) -> None:
        """Write a JSON line from its rendered parts (``_head``, ``_tail``); the caller has
        probed its strings for secrets."""
        self._writer.msg(
            f'{{"request_id": {_quote(request_id)}{head}{duration_ms!r}{tail}{self._clock()}"}}'
        )

    def __call__(self, fields: EventDict) -> None:
        """Write ``fields`` (which include ``event``) as an info line, through the processors."""
        line: Any = fields
        for processor in self._processors:
            line = processor(None, "info", line)
        self._writer.msg(line)


class FixedLine:
    """``AccessLogger.request`` for answers that differ only in request id and duration."""

    __slots__ = ("_access", "_fields", "_template")

    def __init__(
        self,
        access: AccessLogger,
        account_id: str | None,
        route: str,
        status: int,
        cache: str,
        template: tuple[str, str] | None,
    ) -> None:
        self._access = access
        self._fields = (account_id, route, status, cache)
        self._template = template

    def write(self, request_id: str, duration_ms: float) -> None:
        access, template = self._access, self._template
        if template is None or _may_hold_secret(request_id):
            account_id, route, status, cache = self._fields
            access.request(request_id=request_id, account_id=account_id, method="GET",
                           route=route, status=status, duration_ms=duration_ms, queue_wait_ms=0,
                           upstream_ms=None, upstream_attempts=None, cache=cache)  # fmt: skip
            return
        head, tail = template
        access.templated(request_id, head, duration_ms, tail)


# The JSON line as the processors render it, fields in the same order, around its duration.
def _head(account_id: str | None, method: str, route: str, status: int) -> str:
    account = "null" if account_id is None else _quote(account_id)
    return (
        f', "account_id": {account}, "method": {_quote(method)}, "route": {_quote(route)}, '
        f'"status": {status!r}, "duration_ms": '
    )


def _tail(
    queue_wait_ms: float, upstream_ms: float | None, upstream_attempts: int | None, cache: str
) -> str:
    return (
        f', "queue_wait_ms": {queue_wait_ms!r}, "upstream_ms": {_number(upstream_ms)}, '
        f'"upstream_attempts": {_number(upstream_attempts)}, "cache": {_quote(cache)}, '
        '"event": "request", "level": "info", "timestamp": "'
    )


_quote = json.encoder.encode_basestring_ascii  # what the JSON renderer quotes strings with


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)  # json's own float and int text
