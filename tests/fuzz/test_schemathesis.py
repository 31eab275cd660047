"""Schemathesis against the gateway in front of the simulator (our own OpenAPI subset).

Positive and negative cases for every operation; the gateway must never fail with a 5xx of its
own making (502/503/504 are designed answers) and every error it or Harvest sends is JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from gateway.simulator.data import ADMIN_TOKEN_1
from tests.fuzz.live import LiveStack

SCHEMA = Path(__file__).with_name("harvest-subset.yaml")
DESIGNED_5XX = {502, 503, 504}
EXAMPLES = 15


def header(resp, name: str) -> str:
    values = resp.headers.get(name, [])
    return values[0] if values else ""


def operations():
    schema = schemathesis.openapi.from_path(SCHEMA)
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


OPERATIONS = operations()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_gateway_answers_every_generated_request_sanely(live: LiveStack, operation, mode):
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        before = len(live.sim.log)
        resp = case.call(base_url=live.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN_1}"},
                         timeout=10)  # fmt: skip
        where = f"{case.method} {case.formatted_path} -> {resp.status_code}"
        assert resp.status_code < 500 or resp.status_code in DESIGNED_5XX, where
        upstream = live.sim.log[before:]
        if upstream and upstream[-1].status == resp.status_code:
            return  # Harvest's (the simulator's) own answer, passed through as sent
        if header(resp, "x-cache") in ("HIT", "STALE", "COALESCED"):
            return  # an answer Harvest gave earlier, served from the cache
        # The gateway answered itself: only with a designed error, always JSON.
        assert resp.status_code >= 400, where
        assert "json" in header(resp, "content-type"), where
        body = json.loads(resp.content)
        assert body["error"], where
        assert body["error_description"], where

    run()
    assert live.canary.seen == []
