"""The request pipeline: the one place the order of stages is written.

    observe (handler) ▸ cache ▸ admission ▸ record ▸ transport (upstream | replay)

Stages are ``async (exchange, call_next) -> Reply``; none asks which mode the gateway is in:
``build_pipeline`` leaves out what a mode does not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.clock import Clock
from gateway.model import CallNext, Stage, compose
from gateway.policy.schema import Policy
from gateway.settings import Settings
from gateway.telemetry.metrics import Metrics
from gateway.transports.base import Transport


@dataclass(kw_only=True)
class Deps:
    settings: Settings
    policy: Policy
    clock: Clock
    metrics: Metrics
    transport: Transport
    stages: list[Stage] = field(default_factory=list)


def build_pipeline(deps: Deps) -> CallNext:
    return compose(list(deps.stages), deps.transport.handle)
