"""Running the server: one process, or several workers sharing the port (SO_REUSEPORT).

Each worker builds its own app after the fork (its own loop, session, registry): nothing is
shared but the listening port and, through Redis, the quota and the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable

from gateway.settings import Mode, Settings
from gateway.web.app import create_app
from gateway.web.server import ListenError, serve


def workers_problem(settings: Settings) -> str | None:
    """Why ``settings.workers`` cannot be honoured, or None.

    Workers must share quota and cache state, which only Redis provides; record and replay keep
    per-process cassette cursors and writers, so they stay single-process.
    """
    if settings.workers < 1:
        return "--workers must be at least 1"
    if settings.workers == 1:
        return None
    if settings.mode is not Mode.PROXY:
        return "--workers > 1 is for proxy mode (cassettes are written and played per process)"
    if not settings.redis_url:
        return "--workers > 1 needs --redis-url: each worker would otherwise keep its own quota"
    return None


# Collect the young generation after this many new container objects, not CPython's 700:
# a request allocates a few hundred, so the default ran a collection every other request.
GC_THRESHOLD = (10_000, 10, 10)


def tune_gc() -> None:
    """What exists once the app is built (modules, policy, routes) lives as long as the process:
    freeze it out of the collector's sight, and collect the young generation less often. The
    collector's work fell from about 4 % of a proxied request to near nothing."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def run_server(settings: Settings) -> int:
    """Serve one app in this process until SIGINT/SIGTERM; the exit status (1: it could not
    listen, said in one line)."""
    app = create_app(settings)
    tune_gc()
    try:
        if settings.uvloop:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve(app, settings))
        else:
            asyncio.run(serve(app, settings))
    except ListenError as exc:
        print(f"harvest-gateway: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def run_workers(settings: Settings, work: Callable[[], int]) -> int:
    """Fork ``settings.workers`` children running ``work``; forward SIGINT/SIGTERM; reap them."""
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's cleanups
            try:
                code = work()
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0
