"""Drain a backlog through the gateway vs a client retrying 429s with exponential backoff.

    python -m bench.quota_drain [--requests 1000] [--limit 50] [--window 1] [--margin 0.025]
                                [--replicas 1] [--latency 0]

The simulator and the gateways run as separate processes (loopback); the load generator is
this process. Figures: drain time of the backlog against the ideal schedule (first batch at 0,
one full batch per window: (ceil(R/N) - 1) * W), quota utilisation (upstream rate while the
backlog lasts ÷ the limit), 429s seen by Harvest (the simulator) and by callers.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.simulator import ACCOUNT_ID_1, ADMIN_TOKEN_1, MEMBER_TOKEN_1, headers_for
from gateway.simulator.ratelimit import max_in_window
from tests.support import RedisServer, free_port, project_root, wait_port

POLICY = """
name = "bench"
[quotas.general]
limit = {limit}
window = "{window}s"
[queue]
max_wait = "600s"
max_queue = 100000
margin = "{margin}s"
default_penalty = "{window}s"
"""


@dataclass
class Run:
    name: str
    drain: float
    ideal: float
    utilisation: float
    upstream_429: int
    caller_429: int
    max_window: int

    @property
    def ratio(self) -> float:
        return self.drain / self.ideal


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=project_root(), env=env, stdout=out, stderr=out
        )


async def sim_rows(session: aiohttp.ClientSession, sim: str) -> list[dict[str, Any]]:
    async with session.get(f"{sim}/__sim__/log") as resp:
        rows: list[dict[str, Any]] = (await resp.json())["requests"]
    return [r for r in rows if r["account_id"] == ACCOUNT_ID_1]


def measure(name: str, rows: list[dict[str, Any]], n: int, w: float, caller_429: int) -> Run:
    ok = sorted(r["t"] for r in rows if r["status"] != 429)
    drain = ok[-1] - ok[0]
    ideal = (math.ceil(len(ok) / n) - 1) * w
    # while a backlog exists: everything after the first window's burst, at N per W
    utilisation = (len(ok) - n) / (n * drain / w) if drain else 1.0
    return Run(
        name=name,
        drain=drain,
        ideal=ideal,
        utilisation=utilisation,
        upstream_429=sum(1 for r in rows if r["status"] == 429),
        caller_429=caller_429,
        max_window=max_in_window(ok, w),
    )


async def through_gateways(gateways: list[str], requests: int) -> list[int]:
    callers = [headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1), headers_for(MEMBER_TOKEN_1, ACCOUNT_ID_1)]
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def one(i: int) -> int:
            url = f"{gateways[i % len(gateways)]}/v2/time_entries?page={i}"
            async with session.get(url, headers=callers[i % 2]) as resp:
                await resp.read()
                return resp.status

        return await asyncio.gather(*(one(i) for i in range(requests)))


async def with_backoff(sim: str, requests: int, base: float, cap: float) -> list[int]:
    """The usual client: on 429, sleep base * 2**attempt (full jitter, capped), try again."""
    headers = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)
    rng = random.Random(7)
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def one(i: int) -> int:
            for attempt in range(100):
                async with session.get(f"{sim}/v2/time_entries?page={i}", headers=headers) as r:
                    await r.read()
                    if r.status != 429:
                        return r.status
                await asyncio.sleep(rng.uniform(0, min(cap, base * 2**attempt)))
            return 429

        return await asyncio.gather(*(one(i) for i in range(requests)))


async def main(args: argparse.Namespace) -> list[Run]:
    work = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    procs: list[subprocess.Popen[bytes]] = []
    redis: RedisServer | None = None
    try:
        sim_port = free_port()
        procs.append(
            spawn(
                [
                    "-m",
                    "gateway.simulator",
                    "--port",
                    str(sim_port),
                    "--general-limit",
                    str(args.limit),
                    "--general-window",
                    str(args.window),
                    "--latency",
                    str(args.latency),
                    "--log-limit",  # every request: the windows are counted from the log
                    "0",
                ],
                work / "sim.log",
            )
        )
        wait_port(sim_port, 20)
        sim = f"http://127.0.0.1:{sim_port}"
        policy = work / "policy.toml"
        policy.write_text(POLICY.format(limit=args.limit, window=args.window, margin=args.margin))
        extra: list[str] = []
        if args.replicas > 1:
            redis = RedisServer()
            redis.start()
            extra = ["--redis-url", redis.url]
        gateways = []
        for i in range(args.replicas):
            port = free_port()
            procs.append(
                spawn(
                    [
                        "-m",
                        "gateway",
                        "serve",
                        "--port",
                        str(port),
                        "--upstream",
                        sim,
                        "--policy",
                        str(policy),
                        *extra,
                    ],
                    work / f"gw{i}.log",
                )
            )
            wait_port(port, 20)
            gateways.append(f"http://127.0.0.1:{port}")
        runs = []
        async with aiohttp.ClientSession() as session:
            statuses = await through_gateways(gateways, args.requests)
            rows = await sim_rows(session, sim)
            runs.append(
                measure(
                    f"gateway x{args.replicas}", rows, args.limit, args.window, statuses.count(429)
                )
            )
            await session.post(f"{sim}/__sim__/reset")
            await asyncio.sleep(args.window * 1.1)
            statuses = await with_backoff(
                sim, args.requests, base=args.window / 10, cap=args.window * 8
            )
            rows = await sim_rows(session, sim)
            runs.append(
                measure(
                    "client, exponential backoff",
                    rows,
                    args.limit,
                    args.window,
                    statuses.count(429),
                )
            )
        return runs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        if redis is not None:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, runs: list[Run]) -> str:
    lines = [
        f"{args.requests} requests at once for one account; limit {args.limit} per "
        f"{args.window:g} s; margin {args.margin * 1000:g} ms; simulator latency "
        f"{args.latency * 1000:g} ms; {args.replicas} gateway process(es)",
        "",
        "| strategy | drain s | ideal s | drain ÷ ideal | utilisation | 429s at Harvest "
        "| 429s to callers | max in any window |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.drain:.2f} | {r.ideal:.2f} | {r.ratio:.3f} | {r.utilisation:.3f} "
            f"| {r.upstream_429} | {r.caller_429} | {r.max_window} |"
        )
    gw, backoff = runs
    lines.append("")
    lines.append(f"backoff client ÷ gateway drain time: {backoff.drain / gw.drain:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.quota_drain")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument("--margin", type=float, default=0.025)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0)
    ns = parser.parse_args()
    started = time.monotonic()
    text = report(ns, asyncio.run(main(ns)))
    print(text)  # noqa: T201
    print(f"(bench took {time.monotonic() - started:.0f} s)")  # noqa: T201
