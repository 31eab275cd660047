"""Every ``web.AppKey`` the gateway stores on its application, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway.clock import Clock
from gateway.core.credentials import Credentials
from gateway.pipeline.admission import Admission
from gateway.policy.schema import Policy
from gateway.settings import Settings
from gateway.telemetry.metrics import Metrics
from gateway.web.proxy import ProxyHandler

ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]

SETTINGS = web.AppKey("settings", Settings)
POLICY = web.AppKey("policy", Policy)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
LOGGER = web.AppKey("logger", structlog.typing.FilteringBoundLogger)
PROXY = web.AppKey("proxy", ProxyHandler)  # the catch-all handler; holds the pipeline
READY_CHECKS: web.AppKey[list[tuple[str, ReadyCheck]]] = web.AppKey("ready_checks")
# Managed mode's caller keys and Harvest tokens; absent in pass-through mode.
CREDENTIALS = web.AppKey("credentials", Credentials)
ADMISSION = web.AppKey("admission", Admission)
QUOTA_STORE_HEALTH: web.AppKey[Callable[[], tuple[bool, str]]] = web.AppKey("quota_store_health")
