"""Load that holds: many concurrent connections across many accounts against the simulator.

    python -m bench.load_hold [--connections 1000] [--accounts 50] [--seconds 60]

Three processes: the Harvest simulator (here, with ``--accounts`` accounts), ``harvest-gateway
serve`` in front of it with the simulator's limits as its quota, and this driver holding
``--connections`` kept-alive connections, each a caller looping over a mix of GETs for one
account (most with ``Cache-Control: no-cache``, so they need a quota slot) with
``X-Gateway-Max-Wait``; a caller answered 503 waits its ``Retry-After``, as a client should.

Asserted by ``tests/e2e/test_load_holds.py`` on a scaled-down run: every answer is a 200 or a
designed 503 (``quota_wait_exceeded``, ``upstream_busy``), no caller sees a 429 and Harvest never
sends one, no account ever exceeds its limit at Harvest, and the gateway's resident memory stays
under a bound. The baseline is the quota itself: the ideal is every account using its whole
limit, and the run reports the share of it the gateway achieved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
DESIGNED_503 = frozenset({"quota_wait_exceeded", "upstream_busy"})
PATHS = (  # (path, cacheable): a mix of what apps ask
    ("/v2/users/me", False),
    ("/v2/projects?per_page=5", False),
    ("/v2/time_entries?per_page=10", False),
    ("/v2/company", True),
)


def account_ids(n: int) -> list[str]:
    return [f"3{i:05d}" for i in range(1, n + 1)]


def token_for(account: str) -> str:
    return f"load-token-{account}"


# ---- the simulator process ---------------------------------------------------------------


async def serve_simulator(port: int, accounts: int, limit: int, window: float,
                          latency: float, stats: Path) -> None:  # fmt: skip
    """The simulator with ``accounts`` accounts (copies of account 111111's records)."""
    from gateway.simulator import SimConfig, Simulator
    from gateway.simulator.data import ACCOUNT_ID_1, TOKENS, build_account

    sim = Simulator(SimConfig(general_limit=limit, general_window=window, latency=latency))
    admin = TOKENS[build_account(ACCOUNT_ID_1).fixture.admin_token]
    for account in account_ids(accounts):
        sim.accounts[account] = build_account(ACCOUNT_ID_1)
        # an access token as the simulator's own OAuth flow issues them, bound to this account
        sim.tokens.access[token_for(account)] = type(admin)(account, admin.user_id, True)
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    per_account = [sim.max_in_window(window, account_id=a) for a in account_ids(accounts)]
    summary = {
        "requests": len(sim.log),
        "status_429": sim.count(status=429),
        "status_200": sim.count(status=200),
        "max_in_window": max(per_account, default=0),
    }
    await asyncio.to_thread(stats.write_text, json.dumps(summary))
    await runner.cleanup()


# ---- the driver ----------------------------------------------------------------------------


@dataclass
class LoadResult:
    connections: int
    accounts: int
    seconds: float
    limit: int
    window: float
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    sim: dict[str, Any] = field(default_factory=dict)
    gateway_429: float = -1.0
    metrics_text: str = ""
    log_file: Path | None = None

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ideal_200(self) -> float:
        return self.accounts * self.limit * self.seconds / self.window

    def table(self) -> str:
        rss = self.rss_kb or [0]
        ok = self.statuses.get("200", 0)
        upstream = int(self.sim.get("status_200", 0))
        return "\n".join([
            "| figure | value |",
            "| --- | --- |",
            f"| connections x accounts x seconds | {self.connections} x {self.accounts} x "
            f"{self.seconds:g} |",
            f"| quota (gateway and simulator) | {self.limit} per {self.window:g} s per account |",
            f"| answers | {self.answered:,} ({self.answered / self.seconds:,.0f}/s) |",
            f"| 200 at callers (cache hits included) | {ok:,} |",
            f"| 200 from Harvest | {upstream:,} = {upstream / self.ideal_200:.2f}x the quota's "
            f"ideal {self.ideal_200:,.0f} |",
            f"| designed 503 | {self.statuses.get('503', 0):,} |",
            f"| anything else (errors) | {len(self.unexpected)} |",
            f"| 429 at callers / at Harvest / gateway metric | {self.statuses.get('429', 0)} / "
            f"{self.sim.get('status_429')} / {self.gateway_429:g} |",
            f"| most in one window at Harvest (one account) | {self.sim.get('max_in_window')} "
            f"(limit {self.limit}) |",
            f"| gateway RSS first / max / last | {rss[0] / 1024:.0f} / {max(rss) / 1024:.0f} / "
            f"{rss[-1] / 1024:.0f} MiB |",
        ])  # fmt: skip


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


Process = subprocess.Popen[bytes]


def start_processes(
    sim_port: int, gw_port: int, result: LoadResult, latency: float, stats: Path
) -> tuple[Process, Process]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    limit, window = result.limit, result.window
    sim = subprocess.Popen(
        [sys.executable, "-m", "bench.load_hold", "--serve-simulator", str(sim_port),
         "--accounts", str(result.accounts), "--limit", str(limit), "--window", str(window),
         "--latency", str(latency), "--stats", str(stats)],
        cwd=ROOT, env=env,
    )  # fmt: skip
    origin = f"http://127.0.0.1:{sim_port}"
    assert result.log_file is not None
    with open(result.log_file, "wb") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(gw_port), "--upstream",
             origin, "--id-upstream", origin, "--quota", f"general={limit}/{window:g}s",
             "--shutdown-timeout", "5"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return sim, gateway


async def caller(http: aiohttp.ClientSession, url: str, n: int, accounts: list[str],
                 until: float, max_wait: float, result: LoadResult) -> None:  # fmt: skip
    account = accounts[n % len(accounts)]
    headers = {
        "Authorization": f"Bearer {token_for(account)}",
        "Harvest-Account-Id": account,
        "User-Agent": "LoadHold (dev@example.com)",
        "X-Gateway-Max-Wait": f"{max_wait:g}",
    }
    i = n
    while time.monotonic() < until:
        path, cacheable = PATHS[i % len(PATHS)]
        i += 1
        extra = {} if cacheable else {"Cache-Control": "no-cache"}
        try:
            async with http.get(url + path, headers={**headers, **extra}) as r:
                body = await r.read()
                status = r.status
                retry_after = r.headers.get("Retry-After", "1")
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.unexpected.append(f"{type(exc).__name__}: {exc}"[:200])
            result.statuses["error"] += 1
            await asyncio.sleep(0.5)
            continue
        result.statuses[str(status)] += 1
        if status == 200:
            continue
        error = None
        with contextlib.suppress(ValueError):
            error = json.loads(body).get("error")
        if status == 503 and error in DESIGNED_503:
            await asyncio.sleep(min(float(retry_after), until - time.monotonic(), 5.0))
            continue
        result.unexpected.append(f"{status} {body[:160]!r}")
        await asyncio.sleep(0.5)


async def run(connections: int = 1000, accounts: int = 50, seconds: float = 60.0, *,
              limit: int = 10, window: float = 2.0, latency: float = 0.05,
              max_wait: float = 2.0, log_dir: Path | None = None) -> LoadResult:  # fmt: skip
    raise_fd_limit(connections * 2 + 512)
    result = LoadResult(connections, accounts, seconds, limit, window)
    work = Path(tempfile.mkdtemp(prefix="load-hold-", dir=log_dir))
    stats = work / "sim-stats.json"
    result.log_file = work / "gateway.log"
    sim_port, gw_port = free_port(), free_port()
    sim, gateway = start_processes(sim_port, gw_port, result, latency, stats)
    url = f"http://127.0.0.1:{gw_port}"
    try:
        await asyncio.to_thread(wait_port, sim_port, 20)
        await asyncio.to_thread(wait_port, gw_port, 20)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=max_wait + 30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            until = time.monotonic() + seconds
            tasks = []
            for n in range(connections):  # a ramp of ~1 s: the listen backlog is finite
                tasks.append(asyncio.create_task(
                    caller(http, url, n, account_ids(accounts), until, max_wait, result)
                ))  # fmt: skip
                if n % 50 == 49:
                    await asyncio.sleep(0.05)
            while not all(t.done() for t in tasks):
                result.rss_kb.append(rss_kb(gateway.pid))
                await asyncio.wait(tasks, timeout=1.0)
            for t in tasks:
                t.result()  # a bug in the driver must not pass as a quiet run
            async with http.get(url + "/metrics") as r:
                result.metrics_text = await r.text()
                for line in result.metrics_text.splitlines():
                    if line.startswith("harvestgw_upstream_429_total "):
                        result.gateway_429 = float(line.split()[1])
    finally:
        for proc in (gateway, sim):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, sim):
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
    result.sim = json.loads(stats.read_text()) if stats.exists() else {}
    return result


def append_results(result: LoadResult, command: str) -> None:
    section = (
        f"\n\n## load_hold: {result.connections} connections across {result.accounts} accounts "
        f"for {result.seconds:g} s\n\nCommand: `{command}` — {dt.date.today().isoformat()}, this "
        "machine (2 cores shared by the driver, the gateway and the simulator; one process each)."
        "\nBaseline: the quota's ideal (every account using its whole limit all the time).\n\n"
        + result.table()
        + "\n"
    )
    with RESULTS.open("a") as f:
        f.write(section)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--accounts", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--window", type=float, default=2.0)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--max-wait", type=float, default=2.0)
    p.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    p.add_argument("--serve-simulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_simulator:
        asyncio.run(serve_simulator(args.serve_simulator, args.accounts, args.limit,
                                    args.window, args.latency, args.stats))  # fmt: skip
        return
    result = asyncio.run(
        run(args.connections, args.accounts, args.seconds, limit=args.limit,
            window=args.window, latency=args.latency, max_wait=args.max_wait)
    )  # fmt: skip
    print(result.table())  # noqa: T201
    for line in result.unexpected[:10]:
        print("unexpected:", line)  # noqa: T201
    if not args.no_record:
        append_results(result, "python -m bench.load_hold " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
