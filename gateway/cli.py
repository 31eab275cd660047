"""``harvest-gateway``: the command line (``serve``, ``check-policy``; ``cassettes`` tools)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TypeVar

from gateway import cli_cassettes
from gateway.core.credentials import hash_key
from gateway.credentials_file import CredentialsError
from gateway.policy.load import PolicyError
from gateway.settings import (
    ENV_PREFIX,
    AccessLog,
    LogFormat,
    Mode,
    RecordMode,
    Settings,
    env_defaults,
)
from gateway.web.app import create_app, resolve_policy
from gateway.web.workers import run_server, run_workers, workers_problem

Command = Callable[[argparse.Namespace], int]
E = TypeVar("E", bound=Enum)


def _serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], env: dict[str, str]
) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    d = Settings()
    p.add_argument("--host", default=env.get("host", d.host))
    # A value from the environment is given to argparse as text: it converts it like a flag's,
    # and a bad one is a clean usage error of the subcommand that runs, not a traceback.
    p.add_argument("--port", type=int, default=env.get("port", d.port))
    p.add_argument("--upstream", default=env.get("upstream", d.upstream))
    p.add_argument("--id-upstream", default=env.get("id_upstream", d.id_upstream))
    p.add_argument("--public-url", default=env.get("public_url"))
    p.add_argument("--policy", default=env.get("policy"))
    p.add_argument("--mode", choices=[m.value for m in Mode], default=env.get("mode", d.mode))
    p.add_argument(
        "--record-mode",
        choices=[m.value for m in RecordMode],
        default=env.get("record_mode", d.record_mode),
    )
    p.add_argument("--cassette-dir", default=env.get("cassette_dir", d.cassette_dir))
    p.add_argument("--cassette", default=env.get("cassette", d.cassette))
    p.add_argument("--redis-url", default=env.get("redis_url") or None)
    p.add_argument("--quota", action="append", default=None, metavar="NAME=N/W")
    p.set_defaults(env_quota=_env_quota(env))
    p.add_argument(
        "--log-format",
        choices=[f.value for f in LogFormat],
        default=env.get("log_format", d.log_format),
    )
    p.add_argument(
        "--access-log",
        choices=[a.value for a in AccessLog],
        default=env.get("access_log", d.access_log),
        help="which requests get an access-log line (default: all)",
    )
    p.add_argument("--admin-token", default=env.get("admin_token") or None)
    p.add_argument(
        "--shutdown-timeout",
        type=float,
        default=env.get("shutdown_timeout", d.shutdown_timeout),
    )
    _limit_args(p, env, d)
    p.add_argument(
        "--workers",
        type=int,
        default=env.get("workers", d.workers),
        help="worker processes sharing the port (needs --redis-url; proxy mode)",
    )
    p.add_argument(
        "--uvloop",
        action="store_true",
        default=env.get("uvloop", "").lower() in ("1", "true", "yes"),
        help="run on uvloop (pip install 'harvest-gateway[speed]')",
    )
    p.add_argument(
        "--replay-repeat-last",
        action="store_true",
        default=env.get("replay_repeat_last", "").lower() in ("1", "true", "yes"),
        help="in replay, keep answering the last recorded response once a request's are used up",
    )


def _limit_args(p: argparse.ArgumentParser, env: dict[str, str], d: Settings) -> None:
    """Managed credentials and the hardening limits (see SECURITY.md)."""
    p.add_argument(
        "--credentials",
        default=env.get("credentials") or None,
        metavar="FILE",
        help="managed mode: hashed caller keys and Harvest token references (TOML or YAML)",
    )
    for flag, kind, help_ in (
        ("max-body", int, "largest request body in bytes (413 above)"),
        ("max-header-size", int, "longest request line or header field in bytes (431 above)"),
        ("max-headers", int, "most header fields in a request (431 above)"),
        ("keepalive-timeout", float, "seconds an idle connection, or one sending headers, lives"),
        ("keepalive-requests", int, "responses per connection before it is closed (0: no limit)"),
        ("client-timeout", float, "seconds to receive a body or to write a chunk (408 / close)"),
        ("upstream-connections", int, "concurrent upstream exchanges (503 when all stay busy)"),
        ("upstream-wait", float, "seconds to wait for a free upstream connection"),
    ):
        name = flag.replace("-", "_")
        p.add_argument(f"--{flag}", type=kind, default=env.get(name, getattr(d, name)),
                       help=help_)  # fmt: skip


def _member(kind: type[E], value: str, option: str) -> E:
    """A choice from the environment (argparse checks only the flags' own)."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        env = ENV_PREFIX + option.removeprefix("--").replace("-", "_").upper()
        raise ValueError(f"{option} / {env}: {value!r} is not one of {allowed}") from None


def _env_quota(env: dict[str, str]) -> list[str]:
    return [q.strip() for q in env.get("quota", "").split(",") if q.strip()]


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Raises ``ValueError`` naming the option when an environment value is not a choice."""
    return Settings(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        id_upstream=args.id_upstream,
        public_url=args.public_url,
        policy=args.policy,
        mode=_member(Mode, args.mode, "--mode"),
        record_mode=_member(RecordMode, args.record_mode, "--record-mode"),
        cassette_dir=args.cassette_dir,
        cassette=args.cassette,
        redis_url=args.redis_url,
        quota=tuple(args.quota if args.quota is not None else args.env_quota),
        log_format=_member(LogFormat, args.log_format, "--log-format"),
        access_log=_member(AccessLog, args.access_log, "--access-log"),
        admin_token=args.admin_token,
        shutdown_timeout=args.shutdown_timeout,
        replay_repeat_last=args.replay_repeat_last,
        credentials=args.credentials,
        max_body=args.max_body,
        max_header_size=args.max_header_size,
        max_headers=args.max_headers,
        keepalive_timeout=args.keepalive_timeout,
        keepalive_requests=args.keepalive_requests,
        client_timeout=args.client_timeout,
        upstream_connections=args.upstream_connections,
        upstream_wait=args.upstream_wait,
        workers=args.workers,
        uvloop=args.uvloop,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"harvest-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    problem = workers_problem(settings)
    try:
        if problem:
            raise PolicyError(problem)
        create_app(settings)  # fail fast on a bad policy or credentials file, before forking
    except (PolicyError, CredentialsError) as exc:
        print(f"harvest-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if settings.workers > 1:
        return run_workers(settings, lambda: run_server(settings))
    return run_server(settings)


def cmd_hash_key(args: argparse.Namespace) -> int:
    """Read a caller key on stdin, print the digest a credentials file stores for it."""
    key = sys.stdin.readline().strip()
    if not key:
        print("harvest-gateway: no key on stdin", file=sys.stderr)  # noqa: T201
        return 1
    print(hash_key(key))  # noqa: T201
    return 0


def cmd_check_policy(args: argparse.Namespace) -> int:
    try:
        quota = tuple(args.quota if args.quota is not None else args.env_quota)
        policy = resolve_policy(Settings(policy=args.policy, quota=quota))
    except PolicyError as exc:
        print(f"invalid: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    quotas = ", ".join(f"{q.name}={q.limit}/{q.window:g}s" for q in policy.quotas)
    print(f"ok: {policy.name}: quotas {quotas}; {len(policy.cache.rules)} cache rules")  # noqa: T201
    return 0


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = env_defaults(environ)
    parser = argparse.ArgumentParser(prog="harvest-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub, env)
    p = sub.add_parser("check-policy", help="validate a policy file and print its quotas")
    p.add_argument("--policy", default=env.get("policy"))
    p.add_argument("--quota", action="append", metavar="NAME=N/W")
    p.set_defaults(env_quota=_env_quota(env))
    sub.add_parser("hash-key", help="read a caller key on stdin, print its SHA-256 digest")
    cli_cassettes.add_parser(sub, env)
    return parser


COMMANDS: dict[str, Command] = {
    "serve": cmd_serve,
    "check-policy": cmd_check_policy,
    "hash-key": cmd_hash_key,
    "cassettes": cli_cassettes.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
