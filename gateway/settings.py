"""Runtime settings: frozen, keyword-only; the only module that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class Mode(StrEnum):
    PROXY = "proxy"
    RECORD = "record"
    REPLAY = "replay"


class RecordMode(StrEnum):
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    NONE = "none"


class AccessLog(StrEnum):
    ALL = "all"  # one line per request (the default)
    MISSES = "misses"  # every request but those answered from the cache
    ERRORS = "errors"  # only statuses >= 400


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


ENV_PREFIX = "HARVEST_GATEWAY_"


_NO_LIMIT = float("inf")
_TINY = 1e-3  # a timeout must be positive; a thousandth of a second is the least that makes sense
# Command-line numbers and their ranges (inclusive).
_NUMBERS = (
    ("--port", 1, 65535), ("--shutdown-timeout", 0, _NO_LIMIT), ("--max-body", 1, _NO_LIMIT),
    ("--max-header-size", 1, _NO_LIMIT), ("--max-headers", 1, _NO_LIMIT),
    ("--keepalive-timeout", _TINY, _NO_LIMIT), ("--keepalive-requests", 0, _NO_LIMIT),
    ("--client-timeout", _TINY, _NO_LIMIT), ("--upstream-connections", 1, _NO_LIMIT),
    ("--upstream-wait", 0, _NO_LIMIT),
)  # fmt: skip


def _env_of(option: str) -> str:
    return ENV_PREFIX + option[2:].upper().replace("-", "_")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    upstream: str = "https://api.harvestapp.com"
    id_upstream: str = "https://id.getharvest.com"
    public_url: str | None = None  # None: http://{host}:{port}
    policy: str | None = None  # None: the shipped Harvest v2 policy
    mode: Mode = Mode.PROXY
    record_mode: RecordMode = RecordMode.ONCE
    cassette_dir: str = "cassettes"
    cassette: str = "default"
    redis_url: str | None = None
    quota: tuple[str, ...] = ()  # NAME=N/W overrides
    log_format: LogFormat = LogFormat.JSON
    access_log: AccessLog = AccessLog.ALL
    admin_token: str | None = None  # guards the destructive parts of /_gateway/
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    shutdown_timeout: float = 30.0
    max_body: int = 32 * 1024 * 1024
    replay_repeat_last: bool = False
    # Managed credentials: a file of hashed caller keys and token references (None: pass-through).
    credentials: str | None = None
    # Limits (see SECURITY.md): header line/field bytes, header count, idle and header deadline,
    # responses per connection, stalled body read/response write, concurrent upstream exchanges
    # and how long one may wait for a free slot.
    max_header_size: int = 8190
    max_headers: int = 100
    keepalive_timeout: float = 75.0
    keepalive_requests: int = 1000
    client_timeout: float = 30.0
    upstream_connections: int = 100
    upstream_wait: float = 10.0
    # Throughput options: worker processes sharing the port (SO_REUSEPORT; proxy mode on Redis
    # only, so quota and cache stay shared) and the uvloop event loop.
    workers: int = 1
    uvloop: bool = False

    def __post_init__(self) -> None:
        # A mistyped URL fails here, at start-up, with the option's name: not as a 502 on every
        # request, or a traceback when the first Redis connection is made.
        checks = [
            ("--upstream", self.upstream, _HTTP),
            ("--id-upstream", self.id_upstream, _HTTP),
            # optional: empty means unset, as an empty variable does
            ("--public-url", self.public_url or None, _HTTP),
            ("--redis-url", self.redis_url or None, _REDIS),
        ]
        for option, url, schemes in checks:
            if url is not None and (problem := url_problem(url, schemes)):
                raise ValueError(f"{option} ({_env_of(option)}) {url!r}: {problem}")
        # A number out of range would otherwise fail later (a port past 65535 as a traceback
        # at bind) or quietly (a negative body limit refuses every body).
        for option, low, high in _NUMBERS:
            value = getattr(self, option[2:].replace("-", "_"))
            if not low <= value <= high:
                span = f"at least {low:g}" if high == _NO_LIMIT else f"{low:g} to {high:g}"
                raise ValueError(f"{option} ({_env_of(option)}) {value!r}: expected {span}")

    @property
    def public_origin(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def upstream_origin(self) -> str:
        return self.upstream.rstrip("/")

    @property
    def id_upstream_origin(self) -> str:
        return self.id_upstream.rstrip("/")


_HTTP = ("http", "https")
_REDIS = ("redis", "rediss")


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with ``url`` as one of ``schemes`` with a host, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError as exc:
        return f"not a URL ({exc})"
    expected = "a URL starting " + " or ".join(f"{s}://" for s in schemes)
    if parts.scheme not in schemes:
        return f"expected {expected}"
    if not parts.hostname:
        return f"expected {expected} and a host"
    if parts.scheme in _HTTP and (parts.query or parts.fragment):  # request paths follow it
        return "expected no query or fragment"
    return None


def process_environ() -> Mapping[str, str]:
    """The environment secrets are resolved from (managed-mode token_env references)."""
    return os.environ


def env_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``HARVEST_GATEWAY_FOO_BAR`` → ``{"foo_bar": value}`` for every variable set to something:
    an empty one (``FOO=`` in a compose file) counts as unset, so the default applies."""
    env = os.environ if environ is None else environ
    return {
        k[len(ENV_PREFIX) :].lower(): v
        for k, v in env.items()
        if k.startswith(ENV_PREFIX) and v.strip()
    }
