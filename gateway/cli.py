"""``harvest-gateway``: the command line (``serve``, ``check-policy``; ``cassettes`` tools)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

from gateway import cli_cassettes
from gateway.core.credentials import hash_key
from gateway.credentials_file import CredentialsError
from gateway.policy.load import PolicyError
from gateway.settings import AccessLog, LogFormat, Mode, RecordMode, Settings, env_defaults
from gateway.web.app import create_app, resolve_policy
from gateway.web.workers import run_server, run_workers, workers_problem

Command = Callable[[argparse.Namespace], int]


def _serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], env: dict[str, str]
) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    d = Settings()
    p.add_argument("--host", default=env.get("host", d.host))
    p.add_argument("--port", type=int, default=int(env.get("port", d.port)))
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
    env_quota = [q for q in env.get("quota", "").split(",") if q.strip()]
    p.add_argument("--quota", action="append", default=None, metavar="NAME=N/W")
    p.set_defaults(env_quota=env_quota)
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
        default=float(env.get("shutdown_timeout", d.shutdown_timeout)),
    )
    _limit_args(p, env, d)
    p.add_argument(
        "--workers",
        type=int,
        default=int(env.get("workers", d.workers)),
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
        p.add_argument(f"--{flag}", type=kind, default=kind(env.get(name, getattr(d, name))),
                       help=help_)  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        id_upstream=args.id_upstream,
        public_url=args.public_url,
        policy=args.policy,
        mode=Mode(args.mode),
        record_mode=RecordMode(args.record_mode),
        cassette_dir=args.cassette_dir,
        cassette=args.cassette,
        redis_url=args.redis_url,
        quota=tuple(args.quota if args.quota is not None else args.env_quota),
        log_format=LogFormat(args.log_format),
        access_log=AccessLog(args.access_log),
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
    settings = settings_from_args(args)
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
    run_server(settings)
    return 0


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
        policy = resolve_policy(Settings(policy=args.policy, quota=tuple(args.quota or ())))
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
