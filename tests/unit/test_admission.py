"""The admission stage on a fake clock, with a fake upstream at the ``call_next`` seam."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.clock import FakeClock
from gateway.core.routes import resolve
from gateway.errors import GatewayError
from gateway.model import Exchange, Reply
from gateway.pipeline.admission import Admission
from gateway.policy.schema import Policy, QueueRules, QuotaRule
from gateway.stores.quota import InProcessQuotaStore
from gateway.telemetry.logging import make_logger
from gateway.telemetry.metrics import Metrics


def policy(limit: int = 3, window: float = 1.0, **queue: Any) -> Policy:
    rules = QueueRules(**{"margin": 0.0, "max_wait": 60.0, "default_penalty": 2.0, **queue})
    return Policy(
        quotas=(
            QuotaRule(name="general", limit=limit, window=window),
            QuotaRule(
                name="reports", limit=1, window=100.0, prefixes=("/v2/reports/",), methods=("GET",)
            ),
        ),
        queue=rules,
    )


def exchange(
    path: str = "/v2/users/me",
    *,
    caller: str = "alice",
    method: str = "GET",
    account: str | None = "111",
    **headers: str,
) -> Exchange:
    return Exchange(
        method=method,
        route=resolve(path),
        raw_query="",
        upstream_headers=CIMultiDict(),
        body=b"",
        account_id=account,
        principal=caller,
        request_id=f"{caller}-{path}",
        received=0.0,
        caller_headers=CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}),
    )


@dataclass
class Upstream:
    """Records when each request was sent; answers from a script of statuses, then 200."""

    clock: FakeClock
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    sent: list[tuple[float, str]] = field(default_factory=list)

    async def __call__(self, ex: Exchange) -> Reply:
        self.sent.append((self.clock.monotonic(), ex.request_id))
        status, headers = self.script.pop(0) if self.script else (200, {})
        return Reply(status=status, headers=CIMultiDict(headers), body=b"{}")


@dataclass
class Rig:
    clock: FakeClock
    admission: Admission
    upstream: Upstream
    store: InProcessQuotaStore
    metrics: Metrics

    def start(self, ex: Exchange) -> asyncio.Task[Reply]:
        return asyncio.create_task(self.admission(ex, self.upstream))

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def run(self, seconds: float, step: float = 0.0625) -> None:
        await self.settle()
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            await self.settle()

    def sends(self, prefix: str = "") -> list[float]:
        return [round(t - 1000.0, 3) for t, rid in self.upstream.sent if rid.startswith(prefix)]


@pytest.fixture
def rig() -> Callable[..., Rig]:
    def make(p: Policy | None = None) -> Rig:
        clock = FakeClock(start=1000.0)
        p = p or policy()
        store = InProcessQuotaStore(clock, p.queue.margin)
        metrics = Metrics()
        admission = Admission(
            policy=p, store=store, clock=clock, metrics=metrics, log=make_logger("json", StringIO())
        )
        return Rig(clock, admission, Upstream(clock), store, metrics)

    return make


async def outcome(task: Awaitable[Reply]) -> Reply | GatewayError:
    try:
        return await task
    except GatewayError as exc:
        return exc


async def test_a_burst_fills_each_window_exactly(rig: Callable[..., Rig]) -> None:
    r = rig()
    tasks = [r.start(exchange(caller=f"c{i}")) for i in range(7)]
    await r.run(2.5)
    assert all(t.done() for t in tasks)
    assert sorted(r.sends()) == [0, 0, 0, 1, 1, 1, 2]
    waits = sorted(t.result().status for t in tasks)
    assert waits == [200] * 7


async def test_queue_wait_is_noted(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=1.0))
    first, second = exchange(caller="a"), exchange(caller="b")
    tasks = [r.start(first), r.start(second)]
    await r.run(1.2)
    assert [t.done() for t in tasks] == [True, True]
    assert first.notes["queue_wait_ms"] == 0
    assert second.notes["queue_wait_ms"] == pytest.approx(1000, abs=60)


async def test_a_crawl_does_not_starve_an_interactive_get(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=2, window=1.0))
    crawl = [r.start(exchange(f"/v2/time_entries/{i}", caller="crawler")) for i in range(20)]
    await r.settle()
    human = r.start(exchange("/v2/users/me", caller="human"))
    await r.run(1.5)
    assert human.done()
    assert r.sends("human") == [1.0]  # the very next slot, not after 20 crawl pages
    for t in crawl:
        t.cancel()
    await r.settle()


async def test_priority_header_goes_first(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=1.0))
    batch = [r.start(exchange(caller="job", X_Gateway_Priority="batch")) for _ in range(3)]
    await r.settle()
    urgent = r.start(exchange(caller="job2", X_Gateway_Priority="interactive"))
    await r.run(1.1)
    assert urgent.done()
    assert r.sends("job2") == [1.0]
    for t in batch:
        t.cancel()
    await r.settle()


async def test_a_wait_beyond_the_maximum_is_a_503_now(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=2, window=10.0, max_wait=5.0))
    ok = [r.start(exchange(caller="a")) for _ in range(2)]
    late = r.start(exchange(caller="a"))
    await r.settle()
    result = await outcome(late)
    assert isinstance(result, GatewayError)
    assert result.status == 503
    assert result.headers["Retry-After"] == "10"
    assert result.body()["error"] == "quota_wait_exceeded"
    assert result.body()["reason"] == "max_wait"
    await r.settle()
    assert all(t.done() for t in ok)
    status = await r.store.status("111", r.admission.all_limits)
    assert status.limits[0].used == 2  # the refused request reserved nothing


async def test_max_wait_header_lowers_the_wait(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=3.0))
    r.start(exchange(caller="a"))
    patient = r.start(exchange(caller="b"))
    hurried = r.start(exchange(caller="c", X_Gateway_Max_Wait="1.5"))
    await r.settle()
    result = await outcome(hurried)
    assert isinstance(result, GatewayError)
    assert result.headers["Retry-After"] == "6"  # the slot it would have had: after b's
    assert not patient.done()
    bad = await outcome(r.start(exchange(caller="d", X_Gateway_Max_Wait="soon")))
    assert isinstance(bad, GatewayError)
    assert bad.status == 400
    await r.run(3.1)
    assert patient.done()


async def test_an_interactive_arrival_displaces_the_last_crawl_page(
    rig: Callable[..., Rig],
) -> None:
    """The queue is full to the crawl's deadline; the human's GET is served, the crawl's last
    page is the one told to come back (503 with the slot it would have had)."""
    r = rig(policy(limit=1, window=1.0, max_wait=3.0))
    crawl = [r.start(exchange(caller="crawler")) for _ in range(4)]  # slots 0, 1, 2, 3
    await r.settle()
    human = r.start(exchange(caller="human"))
    await r.settle()
    results = [await outcome(t) if t.done() else None for t in crawl]
    refused = [x for x in results if isinstance(x, GatewayError)]
    assert len(refused) == 1
    await r.run(3.1)
    assert human.done()
    assert human.result().status == 200
    assert r.sends("human") == [2.0]  # round-robin: crawl page 1, then the human


async def test_a_429_without_retry_after_blocks_reslots_and_retries(
    rig: Callable[..., Rig],
) -> None:
    r = rig(policy(limit=2, window=1.0, default_penalty=2.0))
    r.upstream.script = [(429, {})]
    first = exchange(caller="a", method="POST")
    tasks = [r.start(first)] + [r.start(exchange(caller=f"q{i}")) for i in range(3)]
    await r.run(4.5)
    assert all(t.done() for t in tasks)
    assert [t.result().status for t in tasks] == [200] * 4
    sends = r.sends()
    assert sends[:2] == [0.0, 0.0]  # the POST (429) and q0 (sent before the 429 came back)
    assert all(t >= 2.0 for t in sends[2:]), sends  # everything else behind the block
    assert len(sends) == 5
    assert r.metrics.reservations.labels("retried")._value.get() == 1
    assert r.metrics.blocked_accounts._value.get() == 0  # the block is over


async def test_a_429_honours_retry_after(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=5, window=1.0, default_penalty=30.0))
    r.upstream.script = [(429, {"Retry-After": "1"})]
    task = r.start(exchange(caller="a"))
    await r.run(1.2)
    assert task.done()
    assert task.result().status == 200
    assert r.sends() == [0.0, 1.0]


async def test_a_persistent_429_ends_in_503_never_429(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=5, window=1.0, default_penalty=0.5, max_retries=2))
    r.upstream.script = [(429, {})] * 5
    task = r.start(exchange(caller="a"))
    await r.run(2.0)
    result = await outcome(task)
    assert isinstance(result, GatewayError)
    assert result.status == 503
    assert result.body()["reason"] == "upstream_rate_limited"
    assert len(r.upstream.sent) == 3


async def test_a_caller_that_leaves_gives_its_slot_back(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=1.0))
    tasks = [r.start(exchange(caller=f"c{i}")) for i in range(3)]
    await r.settle()
    tasks[2].cancel()
    await r.settle()
    status = await r.store.status("111", r.admission.all_limits)
    assert status.limits[0].reserved == 1  # c1's slot only
    await r.run(1.1)
    assert tasks[1].done()


async def test_shutdown_answers_queued_callers_and_releases(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=5.0))
    tasks = [r.start(exchange(caller=f"c{i}")) for i in range(3)]
    await r.settle()
    await r.admission.close()
    results = [await outcome(t) for t in tasks]
    assert isinstance(results[0], Reply)
    for res in results[1:]:
        assert isinstance(res, GatewayError)
        assert res.status == 503
        assert res.body()["reason"] == "shutting_down"
        assert "Retry-After" in res.headers
    status = await r.store.status("111", r.admission.all_limits)
    assert status.limits[0].reserved == 0
    after = await outcome(r.start(exchange(caller="late")))
    assert isinstance(after, GatewayError)


async def test_the_queue_is_bounded(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=1.0, max_queue=2))
    tasks = [r.start(exchange(caller=f"c{i}")) for i in range(4)]
    await r.settle()
    refused = [await outcome(t) for t in tasks if t.done()]
    reasons = [x.body()["reason"] for x in refused if isinstance(x, GatewayError)]
    assert reasons == ["queue_full", "queue_full"]  # two queued (the first until sent)
    await r.run(3.0)


async def test_reports_wait_for_their_own_limit_only(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=10, window=1.0))
    reports = [r.start(exchange("/v2/reports/time/clients", caller="r")) for _ in range(2)]
    await r.settle()
    ordinary = r.start(exchange("/v2/users/me", caller="o"))
    await r.settle()
    assert ordinary.done()
    assert r.sends("o") == [0.0]
    assert reports[0].result().status == 200
    refused = await outcome(reports[1])  # 1 per 100 s, beyond the 60 s maximum wait
    assert isinstance(refused, GatewayError)
    assert refused.body()["quota"] == "general+reports"


async def test_requests_without_an_account_bypass(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=100.0))
    for _ in range(3):
        reply = await r.admission(exchange("/id/api/v2/accounts", account=None), r.upstream)
        assert reply.status == 200


async def test_snapshot_shows_use_queue_and_block(rig: Callable[..., Rig]) -> None:
    r = rig(policy(limit=1, window=1.0))
    tasks = [r.start(exchange(caller=f"c{i}")) for i in range(3)]
    await r.settle()
    await r.admission.block("111", 4.0)
    snap = await r.admission.snapshot()
    account = snap["accounts"]["111"]
    assert account["quotas"]["general"]["used"] == 1
    assert account["queue"]["general"]["waiting"] == 2
    assert account["blocked_for"] == 4.0
    json.dumps(snap)
    for t in tasks:
        t.cancel()
    await r.settle()


async def test_a_priority_cap_keeps_slots_free_for_others(rig: Callable[..., Rig]) -> None:
    """``batch`` is capped at 1 of the 3 general slots per window: interactive GETs arriving
    behind a batch flood still find the other 2 free at once."""
    p = policy(limit=3, window=1.0)
    cap = QuotaRule(name="batch", limit=1, window=1.0, priorities=("batch",))
    r = rig(Policy(quotas=(*p.quotas, cap), queue=p.queue))
    flood = [r.start(exchange(caller="job", X_Gateway_Priority="batch")) for _ in range(4)]
    await r.settle()
    urgent = [r.start(exchange(caller="ui", X_Gateway_Priority="interactive")) for _ in range(2)]
    await r.settle()
    assert all(t.done() for t in urgent)
    assert r.sends("ui") == [0.0, 0.0]
    await r.run(3.1)
    assert sorted(r.sends("job")) == [0.0, 1.0, 2.0, 3.0]
    assert all(t.done() for t in flood)
