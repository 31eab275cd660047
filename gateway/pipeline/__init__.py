"""The request pipeline: the one place the order of stages is written.

    observe (handler) ▸ cache ▸ retry ▸ admission ▸ record ▸ connection gate ▸ timing ▸ transport

Stages are ``async (exchange, call_next) -> Reply``; none asks which mode the gateway is in:
the app leaves out what a mode does not need (no cache in record or replay mode, or when the
policy caches nothing; no admission, gate or timing in replay mode), and ``build_pipeline``
composes what is there, in this order. Before any of it, the handler answers a GET whose copy is
fresh in this process's memory (``gateway.web.hits``), with the cache stage's own decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.model import CallNext, Stage, compose
from gateway.transports.base import Transport


@dataclass(kw_only=True)
class Stages:
    transport: Transport
    cache: Stage | None = None  # outermost: a hit spends no quota
    retry: Stage | None = None  # outside admission: every attempt takes its own quota slot
    admission: Stage | None = None  # waits for a quota slot; absorbs upstream 429s
    record: Stage | None = None  # inside the cache: only real upstream exchanges are written
    gate: Stage | None = None  # bounds concurrent upstream connections
    timing: Stage | None = None  # upstream latency, right around the transport


def build_pipeline(stages: Stages) -> CallNext:
    order = (
        stages.cache,
        stages.retry,
        stages.admission,
        stages.record,
        stages.gate,
        stages.timing,
    )
    return compose([s for s in order if s is not None], stages.transport.handle)
