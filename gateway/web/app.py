"""``create_app``: assemble settings, policy, metrics, logging, transport and pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TextIO

from aiohttp import web

from gateway import __version__
from gateway.clock import Clock, SystemClock
from gateway.core.retry import RetryRules
from gateway.credentials_file import load_credentials
from gateway.pipeline import Stages, build_pipeline
from gateway.pipeline.cache import ResponseCache, build_cache
from gateway.pipeline.connections import connection_gate
from gateway.pipeline.record import record_stage
from gateway.pipeline.retry import retry_stage
from gateway.pipeline.timing import upstream_timing
from gateway.policy.load import load_policy, parse_quota_override, with_quota_overrides
from gateway.policy.schema import Policy
from gateway.settings import Mode, Settings, process_environ
from gateway.stores.cassettes import CassetteLibrary
from gateway.telemetry.logging import AccessLogger, LineWriter, make_logger
from gateway.telemetry.metrics import Metrics
from gateway.transports.replay import Origins, Player, ReplayTransport
from gateway.transports.upstream import UpstreamConfig, UpstreamTransport
from gateway.web import admin, cache_admin, cassettes_admin, keys, quota_admin
from gateway.web.inbound import id_generator
from gateway.web.own import add_own_routes, answering_request_id
from gateway.web.proxy import ProxyHandler, not_found
from gateway.web.quota_setup import install_quota
from gateway.web.server import handler_args

Hook = Callable[[], Awaitable[None]]


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
    app = web.Application(
        client_max_size=settings.max_body,
        handler_args=handler_args(settings),
    )
    if settings.credentials:
        app[keys.CREDENTIALS] = load_credentials(settings.credentials, process_environ())
    log_writer = LineWriter(log_stream)
    app[keys.SETTINGS] = settings
    app[keys.POLICY] = policy
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics
    app[keys.LOGGER] = make_logger(settings.log_format.value, writer=log_writer)
    app[keys.READY_CHECKS] = []
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
    cache = build_cache(
        settings, policy.cache, clock, metrics, policy.queue.max_wait, app[keys.LOGGER]
    )
    app[cache_admin.CACHE] = cache
    starts: list[Hook] = [cache.start]
    stops: list[Hook] = [cache.aclose, library.aclose]  # the library finishes pending writes

    if settings.mode is Mode.REPLAY:
        # no session: never a socket
        replay = ReplayTransport(player, clock, penalty=policy.queue.default_penalty)
        stages = Stages(transport=replay)
        app[keys.READY_CHECKS].append(("cassettes", _dir_check(library.root)))
    else:
        upstream = UpstreamTransport(_upstream_config(settings))
        starts.insert(0, upstream.start)
        stops.insert(0, upstream.aclose)
        stages = Stages(
            transport=upstream,
            gate=connection_gate(settings.upstream_connections, settings.upstream_wait, metrics),
            timing=upstream_timing(clock, metrics),
            admission=install_quota(app),
            retry=retry_stage(
                RetryRules(policy.queue.upstream_retries, policy.queue.retry_backoff),
                clock=clock,
                metrics=metrics,
                log=app[keys.LOGGER],
            ),
        )
        if settings.mode is Mode.RECORD:
            stages.record = record_stage(
                player,
                mode=settings.record_mode,
                rules=policy.redaction,
                clock=clock,
                log=app[keys.LOGGER],
            )
        else:
            _use_cache(app, stages, cache, settings)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        for start in starts:
            await start()
        yield
        for stop in stops:
            await stop()
        log_writer.flush()

    app.cleanup_ctx.append(lifecycle)
    request_ids = id_generator()  # one sequence for proxied requests and the gateway's own
    add_own_routes(
        app.router,
        # /_gateway/quota answers {"enabled": false} where there is no quota (replay mode)
        [*admin.routes(), *quota_admin.routes(), *cache_admin.routes(), *cassettes_admin.routes()],
        request_ids,
    )
    app.router.add_route(
        "*", "/_gateway/{tail:.*}", answering_request_id(_gateway_not_found, request_ids)
    )
    proxy = ProxyHandler(
        settings=settings,
        policy=policy,
        clock=clock,
        metrics=metrics,
        access=AccessLogger(settings.log_format.value, log_writer),
        pipeline=build_pipeline(stages),
        request_ids=request_ids,
        credentials=app.get(keys.CREDENTIALS),
        # The hit path, where a cache stage is in the pipeline and has anything to cache.
        cache=cache if stages.cache is cache else None,
    )
    app[keys.PROXY] = proxy
    app.router.add_route("*", "/{tail:.*}", proxy.__call__, expect_handler=proxy.expect)
    return app


def _use_cache(
    app: web.Application, stages: Stages, cache: ResponseCache, settings: Settings
) -> None:
    """Proxy mode only: in record mode a hit would hide an exchange from the cassette. A policy
    that caches nothing has nothing to look up or invalidate: no stage at all."""
    if cache.rules.rules:
        stages.cache = cache
    if settings.redis_url:
        app[keys.READY_CHECKS].append(("cache", cache.store.ping))


def _upstream_config(settings: Settings) -> UpstreamConfig:
    return UpstreamConfig(
        api=settings.upstream_origin,
        id=settings.id_upstream_origin,
        public=settings.public_origin,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.total_timeout,
        max_connections=settings.upstream_connections,
    )


def _dir_check(root: Path) -> keys.ReadyCheck:
    async def check() -> tuple[bool, str]:
        found = await asyncio.to_thread(root.is_dir)
        return found, f"{root} {'exists' if found else 'is missing'}"

    return check


async def _gateway_not_found(request: web.Request) -> web.Response:
    return not_found(request.path)
