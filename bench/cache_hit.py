"""Cache-hit throughput and latency against a bare aiohttp server, measured in the same run.

    python -m bench.cache_hit [--seconds 5] [--rounds 3] [--connections 64] [--pin]

The simulator is the upstream; the gateway caches ``GET /v2/users/me``; the bare aiohttp server
(the ceiling for any aiohttp gateway) answers the very bytes the gateway cached. Variants: the
gateway on asyncio and on uvloop (each with and without an access line per hit), and as two
uvloop workers sharing the port on Redis. A second reference serves the same body from aiohttp's
low-level server, without the Application's router, which the gateway also sends proxied targets
past: each ratio is given against it too. Rounds are interleaved so the machine's drift hits every
variant alike, and each run follows a run of the bare server: the median of those pairs' ratios
is the figure drift moves least (the machine's speed changes within seconds). Besides requests
per second, each server's CPU time per request is read from /proc (all its workers together):
its capacity on saturated cores.

At saturation, latency is mostly queueing (the bare server's own p99 is many milliseconds). So
a last phase paces the same 64 connections (each waits between requests) to about 40 % of the
bare server's throughput, and compares p99 there: the latency a hit adds under a real load.

``--pin`` runs each server on CPU 0 and the simulator and wrk (one thread) on CPU 1, as
``bench.passthrough --pin`` does (the two-worker variants, which need both cores, are left out).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from bench.harness import (
    HEADERS,
    PATH,
    WrkResult,
    append_results,
    free_port,
    median_of,
    paired_ratio,
    pinned,
    process,
    python,
    wrk,
    wrk_cpu,
)
from tests.support import redis_server


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=HEADERS)) as resp:
        return resp.read(), resp.headers.get("X-Cache", "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers on CPU 0, simulator and wrk on CPU 1 (no --workers runs)",
    )
    args = parser.parse_args()
    server_cpu, other_cpu = ("0", "1") if args.pin else (None, None)
    sim_port = free_port()
    upstream = f"http://127.0.0.1:{sim_port}"
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        sim = python("-m", "gateway.simulator", "--port", str(sim_port))
        stack.enter_context(process(pinned(sim, other_cpu), sim_port))
        variants = {
            "gateway hit, asyncio": [],
            "gateway hit, asyncio, --access-log misses": ["--access-log", "misses"],
            "gateway hit, uvloop": ["--uvloop"],
            "gateway hit, uvloop, --access-log misses": ["--uvloop", "--access-log", "misses"],
            "gateway hit, 2 workers + uvloop (Redis)": ["--uvloop", "--workers", "2",
                                                        "--redis-url", redis.url],
            "gateway hit, 2 workers + uvloop (Redis), --access-log misses": [
                "--uvloop", "--workers", "2", "--redis-url", redis.url, "--access-log", "misses"],
        }  # fmt: skip
        if args.pin:  # two workers on one core would only take turns
            variants = {name: v for name, v in variants.items() if "--workers" not in v}
        urls: dict[str, str] = {}
        pids: dict[str, int] = {}
        for name, extra in variants.items():
            port = free_port()
            cmd = python("-m", "gateway", "serve", "--port", str(port), "--upstream", upstream,
                         *extra)  # fmt: skip
            pids[name] = stack.enter_context(process(pinned(cmd, server_cpu), port))
            urls[name] = f"http://127.0.0.1:{port}{PATH}"
            fetch(urls[name])  # fill the cache
        body, _ = fetch(urls["gateway hit, asyncio"])
        body_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "body.json"
        body_file.write_bytes(body)
        bare = "bare aiohttp (1 process, asyncio)"
        low = "bare aiohttp, low-level server (no router)"
        for name, extra in ((bare, []), (low, ["--low-level"])):
            port = free_port()
            cmd = python("bench/bare_server.py", "--port", str(port), "--body", str(body_file),
                         *extra)  # fmt: skip
            pids[name] = stack.enter_context(process(pinned(cmd, server_cpu), port))
            urls = {**urls, name: f"http://127.0.0.1:{port}{PATH}"}
        load: dict[str, Any] = {"connections": args.connections}
        if args.pin:
            load |= {"cpus": other_cpu, "threads": 1}
        for url in urls.values():
            wrk(url, HEADERS, seconds=1, **load)  # warm up
        results: dict[str, list[WrkResult]] = {name: [] for name in urls}
        paired: dict[str, list[WrkResult]] = {name: [] for name in urls}  # bare, just before

        def run(name: str) -> WrkResult:
            return wrk_cpu(pids[name], urls[name], HEADERS, seconds=args.seconds, **load)

        for _ in range(args.rounds):
            for name in urls:
                if name != bare:  # each run right after one of bare's, which it is compared to
                    paired[name].append(run(bare))
                    results[bare].append(paired[name][-1])
                    results[name].append(run(name))
        ceiling = median_of(results[bare])
        # Paced: each connection waits so that together they offer ~40 % of the bare ceiling.
        pause = max(1, round(args.connections * 1000 / (0.4 * ceiling.rps)))
        paced = {name: wrk(url, HEADERS, seconds=args.seconds, pause_ms=pause, **load)
                 for name, url in urls.items()}  # fmt: skip
        for name, url in urls.items():
            if name.startswith("gateway"):
                assert fetch(url)[1] == "HIT", f"{name} did not answer from its cache"
    medians = {name: median_of(r) for name, r in results.items()}
    floor = medians[low]
    lines = [
        "servers pinned to CPU 0, simulator and wrk (1 thread) to CPU 1"
        if args.pin
        else "unpinned: wrk (2 threads), simulator and servers share both cores"
    ]
    for name, m in medians.items():
        if name == bare:
            lines.append(f"body {len(body)} B; {name}: {m.line()}")
            continue
        pair_rps, pair_cpu = paired_ratio(results[name], paired[name])
        lines.append(
            f"{name}: {m.line()}; throughput {m.rps / ceiling.rps:.2f}x bare "
            f"({m.rps / floor.rps:.2f}x low-level), capacity (CPU per request, bare ÷ gateway) "
            f"{ceiling.cpu_us / m.cpu_us:.2f}x ({floor.cpu_us / m.cpu_us:.2f}x); median of the "
            f"ratios to the bare run just before each: throughput {pair_rps:.2f}x, "
            f"capacity {pair_cpu:.2f}x"
        )
    lines.append(f"paced ({args.connections} connections, {pause} ms between requests on each):")
    lines += [f"  {name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
              + ("" if name in (bare, low)
                 else f" ({r.p99_ms / paced[bare].p99_ms:.2f}x bare's p99)")
              for name, r in paced.items()]  # fmt: skip
    lines.append("targets: throughput >= 0.8x bare, hit p99 <= 2 ms at 64 connections")
    for line in lines:
        print(line)  # noqa: T201
    append_results(
        f"Cache hits vs a bare aiohttp server ({args.connections} connections, "
        f"median of {args.rounds})",
        "python -m bench.cache_hit" + (" --pin" if args.pin else ""),
        lines,
    )


if __name__ == "__main__":
    main()
