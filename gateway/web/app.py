"""``create_app``: assemble settings, policy, metrics, logging, transport and pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TextIO

from aiohttp import web

from gateway import __version__
from gateway.clock import Clock, SystemClock
from gateway.pipeline import Deps, build_pipeline
from gateway.pipeline.cache import build_cache
from gateway.pipeline.timing import upstream_timing
from gateway.policy.load import load_policy, parse_quota_override, with_quota_overrides
from gateway.policy.schema import Policy
from gateway.settings import Settings
from gateway.telemetry.logging import LineWriter, make_logger
from gateway.telemetry.metrics import Metrics
from gateway.transports.upstream import UpstreamConfig, UpstreamTransport
from gateway.web import admin, cache_admin, keys
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

    transport = UpstreamTransport(
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
    deps.stages.append(upstream_timing(clock, metrics))
    cache = build_cache(settings, policy.cache, clock, metrics, policy.queue.max_wait)
    deps.stages.insert(0, cache)  # outermost: a hit spends no quota
    app[cache_admin.CACHE] = cache
    if settings.redis_url:
        app[keys.READY_CHECKS].append(("cache", cache.store.ping))
    app[keys.PIPELINE] = build_pipeline(deps)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await transport.start()
        await cache.start()
        yield
        await cache.aclose()
        await transport.aclose()
        log_writer.flush()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    app.router.add_get("/metrics", admin.metrics)
    cache_admin.add_routes(app)
    app.router.add_route("*", "/_gateway/{tail:.*}", _gateway_not_found)
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app


async def _gateway_not_found(request: web.Request) -> web.Response:
    return not_found(request.path)
