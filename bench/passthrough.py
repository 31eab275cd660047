"""Pass-through overhead: the gateway vs a minimal aiohttp proxy, both in front of the simulator.

``python -m bench.passthrough [--seconds 8] [--rounds 3]``

Two ratios: requests per second under wrk, and each proxy's own CPU time per request (its
capacity on a saturated core). On a shared two-core machine the load generator, the simulator
and the proxy compete for the cores, so the first moves by a tenth between runs; the second
does not depend on what else ran.

p99 at saturation is mostly queueing, so a last phase paces the connections (each waits
between requests) to about 40 % of the baseline's throughput and compares p99 there too.

``--pin`` runs each proxy on CPU 0 and the simulator and wrk (one thread) on CPU 1: the proxy
then owns a core, its throughput is its capacity, and runs vary far less than unpinned ones,
where the three processes take turns on both cores.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.harness import (
    HEADERS,
    PATH,
    ROOT,
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="proxies on CPU 0, the rest on CPU 1")
    args = parser.parse_args()
    proxy_cpu, other_cpu = ("0", "1") if args.pin else (None, None)

    sim_port, base_port, gw_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{sim_port}"
    policy = str(ROOT / "bench" / "passthrough-policy.toml")
    sim = python("-m", "gateway.simulator", "--port", str(sim_port),
                 "--general-limit", "100000000", "--general-window", "1")  # fmt: skip
    base = python("-m", "bench.baseline_proxy", str(base_port), upstream)
    gw = python("-m", "gateway", "serve", "--port", str(gw_port), "--upstream", upstream,
                "--policy", policy)  # fmt: skip
    sim, base, gw = pinned(sim, other_cpu), pinned(base, proxy_cpu), pinned(gw, proxy_cpu)
    baseline: list[WrkResult] = []
    gateway: list[WrkResult] = []
    with (
        process(sim, sim_port),
        process(base, base_port) as base_pid,
        process(gw, gw_port) as gw_pid,
    ):
        for url in (f"http://127.0.0.1:{base_port}{PATH}", f"http://127.0.0.1:{gw_port}{PATH}"):
            wrk(url, HEADERS, seconds=2, connections=args.connections, cpus=other_cpu)  # warm up
        load: dict[str, Any] = {"seconds": args.seconds, "connections": args.connections}
        if args.pin:
            load |= {"cpus": other_cpu, "threads": 1}
        for _ in range(args.rounds):  # interleave, so drift hits both alike
            baseline.append(wrk_cpu(base_pid, f"http://127.0.0.1:{base_port}{PATH}", HEADERS,
                                    **load))  # fmt: skip
            gateway.append(wrk_cpu(gw_pid, f"http://127.0.0.1:{gw_port}{PATH}", HEADERS, **load))
        b, g = median_of(baseline), median_of(gateway)
        pause = max(1, round(args.connections * 1000 / (0.4 * b.rps)))
        paced = [wrk(f"http://127.0.0.1:{port}{PATH}", HEADERS, pause_ms=pause, **load)
                 for port in (base_port, gw_port)]  # fmt: skip
    pair_rps, pair_cpu = paired_ratio(gateway, baseline)
    lines = [
        "proxies pinned to CPU 0, simulator and wrk (1 thread) to CPU 1"
        if args.pin
        else "unpinned: wrk (2 threads), simulator and proxy share both cores",
        f"baseline (minimal aiohttp proxy): {b.line()}",
        f"gateway (proxy mode, no cache): {g.line()}",
        f"throughput ratio gateway/baseline: {g.rps / b.rps:.2f} (target >= 0.9)",
        f"capacity ratio (CPU per request, baseline ÷ gateway): {b.cpu_us / g.cpu_us:.2f}",
        f"median of the rounds' own ratios: throughput {pair_rps:.2f}, capacity {pair_cpu:.2f}",
        f"p99 ratio gateway/baseline: {g.p99_ms / b.p99_ms:.2f} (target <= 1.2)",
        f"paced ({pause} ms between requests on each connection): baseline "
        f"{paced[0].rps:,.0f} req/s, p99 {paced[0].p99_ms:.2f} ms; gateway {paced[1].rps:,.0f} "
        f"req/s, p99 {paced[1].p99_ms:.2f} ms; p99 ratio {paced[1].p99_ms / paced[0].p99_ms:.2f}",
    ]
    for line in lines:
        print(line)  # noqa: T201
    append_results(
        f"Pass-through: gateway vs minimal aiohttp proxy ({args.connections} connections, "
        f"median of {args.rounds})",
        "python -m bench.passthrough" + (" --pin" if args.pin else ""),
        lines,
    )


if __name__ == "__main__":
    main()
