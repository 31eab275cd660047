"""Wiring the quota: choose the store (in-process or Redis with fallback), add the stage."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.pipeline.admission import Admission
from gateway.settings import Mode
from gateway.stores.quota import InProcessQuotaStore, QuotaStore
from gateway.stores.quota_failover import FailoverQuotaStore
from gateway.stores.quota_redis import RedisQuotaStore, connect
from gateway.web import keys


def install_quota(app: web.Application) -> Admission | None:
    """Create the admission stage for ``app`` (None in replay mode, which never goes upstream)."""
    settings, policy = app[keys.SETTINGS], app[keys.POLICY]
    if settings.mode is Mode.REPLAY:
        return None
    clock, metrics, log = app[keys.CLOCK], app[keys.METRICS], app[keys.LOGGER]
    margin = policy.queue.margin
    store: QuotaStore
    failover: FailoverQuotaStore | None = None
    if settings.redis_url:
        failover = FailoverQuotaStore(
            RedisQuotaStore(connect(settings.redis_url), margin=margin),
            clock=clock,
            metrics=metrics,
            log=log,
            all_limits=[],  # set below, from the admission's view of the policy
            share=policy.queue.fallback_share,
        )
        store = failover
    else:
        store = InProcessQuotaStore(clock, margin)
    admission = Admission(policy=policy, store=store, clock=clock, metrics=metrics, log=log)
    app[keys.ADMISSION] = admission
    if failover is not None:
        failover.all_limits = admission.all_limits
        app[keys.QUOTA_STORE_HEALTH] = failover.health

        async def ready() -> tuple[bool, str]:
            return failover.health()

        app[keys.READY_CHECKS].append(("quota", ready))

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        if failover is not None:
            await failover.start()
        yield
        await admission.close()
        await store.aclose()

    async def on_shutdown(_: web.Application) -> None:
        await admission.close()  # before in-flight handlers are awaited

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return admission
