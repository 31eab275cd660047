"""Cache-hit throughput and latency against a bare aiohttp server, measured in the same run.

    python -m bench.cache_hit [--seconds 5] [--rounds 3] [--connections 64]

The simulator is the upstream; the gateway caches ``GET /v2/users/me``; the bare aiohttp server
(the ceiling for any aiohttp gateway) answers the very bytes the gateway cached. Variants: the
gateway on asyncio and on uvloop (each with and without an access line per hit), and as two
uvloop workers sharing the port on Redis. Rounds are interleaved so the machine's drift hits every
variant alike. Besides requests per second, each server's CPU time per request is read from
/proc (all its workers together): its capacity on saturated cores, which what else ran on the
machine does not move.

At saturation, latency is mostly queueing (the bare server's own p99 is many milliseconds). So
a last phase paces the same 64 connections (each waits between requests) to about 40 % of the
bare server's throughput, and compares p99 there: the latency a hit adds under a real load.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import urllib.request
from pathlib import Path

from bench.harness import (
    HEADERS,
    PATH,
    WrkResult,
    append_results,
    free_port,
    median_of,
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
    args = parser.parse_args()
    sim_port = free_port()
    upstream = f"http://127.0.0.1:{sim_port}"
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        stack.enter_context(process(python("-m", "gateway.simulator", "--port", str(sim_port)),
                                    sim_port))  # fmt: skip
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
        urls: dict[str, str] = {}
        pids: dict[str, int] = {}
        for name, extra in variants.items():
            port = free_port()
            cmd = python("-m", "gateway", "serve", "--port", str(port), "--upstream", upstream,
                         *extra)  # fmt: skip
            pids[name] = stack.enter_context(process(cmd, port))
            urls[name] = f"http://127.0.0.1:{port}{PATH}"
            fetch(urls[name])  # fill the cache
        body, _ = fetch(urls["gateway hit, asyncio"])
        body_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "body.json"
        body_file.write_bytes(body)
        bare_port = free_port()
        bare = "bare aiohttp (1 process, asyncio)"
        bare_cmd = python("bench/bare_server.py", "--port", str(bare_port),
                          "--body", str(body_file))  # fmt: skip
        pids[bare] = stack.enter_context(process(bare_cmd, bare_port))
        urls = {bare: f"http://127.0.0.1:{bare_port}{PATH}", **urls}
        for url in urls.values():
            wrk(url, HEADERS, seconds=1, connections=args.connections)  # warm up
        results: dict[str, list[WrkResult]] = {name: [] for name in urls}
        for _ in range(args.rounds):
            for name, url in urls.items():
                results[name].append(wrk_cpu(pids[name], url, HEADERS, seconds=args.seconds,
                                             connections=args.connections))  # fmt: skip
        ceiling = median_of(results[bare])
        # Paced: each connection waits so that together they offer ~40 % of the bare ceiling.
        pause = max(1, round(args.connections * 1000 / (0.4 * ceiling.rps)))
        paced = {name: wrk(url, HEADERS, seconds=args.seconds, connections=args.connections,
                           pause_ms=pause) for name, url in urls.items()}  # fmt: skip
        for name, url in urls.items():
            if name.startswith("gateway"):
                assert fetch(url)[1] == "HIT", f"{name} did not answer from its cache"
    medians = {name: median_of(r) for name, r in results.items()}
    lines = [f"body {len(body)} B; {name}: {m.line()}" if name == bare
             else f"{name}: {m.line()}; throughput {m.rps / ceiling.rps:.2f}x bare, "
                  f"capacity (CPU per request, bare ÷ gateway) {ceiling.cpu_us / m.cpu_us:.2f}x"
             for name, m in medians.items()]  # fmt: skip
    lines.append(f"paced ({args.connections} connections, {pause} ms between requests on each):")
    lines += [f"  {name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms"
              + ("" if name == bare else f" ({r.p99_ms / paced[bare].p99_ms:.2f}x bare's p99)")
              for name, r in paced.items()]  # fmt: skip
    lines.append("targets: throughput >= 0.8x bare, hit p99 <= 2 ms at 64 connections")
    for line in lines:
        print(line)  # noqa: T201
    append_results(
        f"Cache hits vs a bare aiohttp server ({args.connections} connections, "
        f"median of {args.rounds})",
        "python -m bench.cache_hit",
        lines,
    )


if __name__ == "__main__":
    main()
