"""``create_app``: assemble settings, policy, metrics, logging, transport and pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

from aiohttp import web

from gateway import __version__
from gateway.clock import Clock, SystemClock
from gateway.pipeline import Deps, build_pipeline
from gateway.pipeline.cache import build_cache
from gateway.pipeline.record import record_stage
from gateway.pipeline.timing import upstream_timing
from gateway.policy.load import load_policy, parse_quota_override, with_quota_overrides
from gateway.policy.schema import Policy
from gateway.settings import Mode, Settings
from gateway.stores.cassettes import CassetteLibrary
from gateway.telemetry.logging import LineWriter, make_logger
from gateway.telemetry.metrics import Metrics
from gateway.transports.base import Transport
from gateway.transports.replay import Origins, Player, ReplayTransport
from gateway.transports.upstream import UpstreamConfig, UpstreamTransport
from gateway.web import admin, cache_admin, cassettes_admin, keys
from gateway.web.proxy import id_generator, not_found, proxy_handler


def resolve_policy(settings: Settings) -> Policy:
    policy = load_policy(settings.policy)
    overrides = [parse_quota_override(q) for q in settings.quota]
    return with_quota_overrides(policy, overrides) if overrides else policy


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    log_stream: TextIO | None = None,
) -> web.Application:
    """A fresh application; every piece of state lives on it (nothing module-global)."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    policy = resolve_policy(settings)
    app = web.Application(client_max_size=settings.max_body)
    app[keys.SETTINGS] = settings
    app[keys.POLICY] = policy
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics
    log_writer = LineWriter(log_stream)
    app[keys.LOGGER] = make_logger(settings.log_format.value, writer=log_writer)
    app[keys.READY_CHECKS] = []
    app[keys.REQUEST_IDS] = id_generator()
    metrics.build_info.info({"version": __version__, "mode": settings.mode.value})

    library = CassetteLibrary(
        Path(settings.cassette_dir),
        ignored_query=policy.redaction.query,
        record_mode=settings.record_mode,
        clock=clock,
    )
    app[cassettes_admin.LIBRARY] = library
    player = Player(
        library,
        Origins(
            api=settings.upstream_origin,
            id=settings.id_upstream_origin,
            public=settings.public_origin,
        ),
        metrics,
        default_cassette=settings.cassette,
        repeat_last=settings.replay_repeat_last,
    )
    upstream: UpstreamTransport | None = None
    transport: Transport
    if settings.mode is Mode.REPLAY:
        transport = ReplayTransport(player)  # no session, no connector: never a socket

        async def cassette_dir_ready() -> tuple[bool, str]:
            found = library.root.is_dir()
            return found, f"{library.root} {'exists' if found else 'is missing'}"

        app[keys.READY_CHECKS].append(("cassettes", cassette_dir_ready))
    else:
        transport = upstream = UpstreamTransport(
            UpstreamConfig(
                api=settings.upstream_origin,
                id=settings.id_upstream_origin,
                public=settings.public_origin,
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
                total_timeout=settings.total_timeout,
            )
        )
    deps = Deps(settings=settings, policy=policy, clock=clock, metrics=metrics, transport=transport)
    if settings.mode is Mode.RECORD:
        deps.stages.append(
            record_stage(
                player,
                mode=settings.record_mode,
                rules=policy.redaction,
                clock=clock,
                log=app[keys.LOGGER],
            )
        )
    if upstream is not None:
        deps.stages.append(upstream_timing(clock, metrics))
    cache = build_cache(settings, policy.cache, clock, metrics, policy.queue.max_wait)
    app[cache_admin.CACHE] = cache
    if settings.mode is Mode.PROXY:
        # Outermost, so a hit spends no quota. Not in record mode (a hit would hide an exchange
        # from the cassette) nor in replay (repeats must play in recorded order).
        deps.stages.insert(0, cache)
        if settings.redis_url:
            app[keys.READY_CHECKS].append(("cache", cache.store.ping))
    app[keys.PIPELINE] = build_pipeline(deps)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        if upstream is not None:
            await upstream.start()
        await cache.start()
        yield
        await cache.aclose()
        await transport.aclose()
        await library.aclose()  # finishes pending cassette writes
        log_writer.flush()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    app.router.add_get("/metrics", admin.metrics)
    cache_admin.add_routes(app)
    cassettes_admin.add_routes(app)
    app.router.add_route("*", "/_gateway/{tail:.*}", _gateway_not_found)
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app


async def _gateway_not_found(request: web.Request) -> web.Response:
    return not_found(request.path)
