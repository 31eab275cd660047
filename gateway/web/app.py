"""``create_app``: assemble settings, policy, metrics, logging, transport and pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TextIO

from aiohttp import web

from gateway import __version__
from gateway.clock import Clock, SystemClock
from gateway.pipeline import Deps, build_pipeline
from gateway.pipeline.timing import upstream_timing
from gateway.policy.load import load_policy, parse_quota_override, with_quota_overrides
from gateway.policy.schema import Policy
from gateway.settings import Settings
from gateway.telemetry.logging import make_logger
from gateway.telemetry.metrics import Metrics
from gateway.transports.upstream import UpstreamConfig, UpstreamTransport
from gateway.web import admin, keys
from gateway.web.proxy import not_found, proxy_handler
from gateway.web.quota_setup import install_quota


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
    app[keys.LOGGER] = make_logger(settings.log_format.value, log_stream)
    app[keys.READY_CHECKS] = []
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
    admission = install_quota(app)  # also routes /_gateway/quota (before the catch-all)
    if admission is not None:
        deps.stages.append(admission)
    deps.stages.append(upstream_timing(clock, metrics))
    app[keys.PIPELINE] = build_pipeline(deps)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await transport.start()
        yield
        await transport.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", admin.healthz)
    app.router.add_get("/readyz", admin.readyz)
    app.router.add_get("/metrics", admin.metrics)
    app.router.add_route("*", "/_gateway/{tail:.*}", _gateway_not_found)
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app


async def _gateway_not_found(request: web.Request) -> web.Response:
    return not_found(request.path)
