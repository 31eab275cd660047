"""CPU instructions per request, counted by callgrind: ratios that machine noise cannot move.

    python -m bench.instructions [--requests 500]

wrk's requests per second on a shared two-core machine drift by a third between runs; the
instructions a server executes per request do not (the same count twice, whatever else runs).
Each server runs under ``valgrind --tool=callgrind``; after a warm-up its counters are zeroed,
``--requests`` requests are sent (``--in-flight`` at a time, 16 by default), and the counters
dumped. Ratios are
baseline ÷ gateway instructions: the throughput each would reach on one saturated core,
relative to the baseline. Pairs: the gateway's pass-through against the minimal aiohttp proxy
(``bench/baseline_proxy.py``), and the gateway's cache hit against the bare aiohttp server
returning the same body (``bench/bare_server.py``), and against the same served by aiohttp's
low-level server, without the router the gateway also sends proxied targets past.
valgrind ships on this machine's kind.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.harness import HEADERS, PATH, ROOT, append_results, free_port, process, python


async def drive(url: str, n: int, concurrency: int = 16) -> bytes:
    """``n`` GETs, ``concurrency`` at a time; every one must succeed. Returns the last body."""
    slots = asyncio.Semaphore(concurrency)
    body = b""
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            nonlocal body
            async with slots, session.get(url, headers=HEADERS) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"{url}: {resp.status} {body[:200]!r}")

        await asyncio.gather(*(one() for _ in range(n)))
    return body


def _counted(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {dump}")


def per_request(
    args: Sequence[str], port: int, requests: int, work: Path, in_flight: int = 16
) -> int:
    """Instructions per request of the server ``args`` (listening on ``port``)."""
    out = work / f"callgrind.{port}"
    url = f"http://127.0.0.1:{port}{PATH}"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *args]
    # Python starts some fifty times slower under callgrind.
    with process(cmd, port, startup=180, stop=60) as pid:
        asyncio.run(drive(url, 200))  # warm-up: connections, caches, first-use paths
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        asyncio.run(drive(url, requests, in_flight))
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dumps = sorted(work.glob(f"callgrind.{port}.*"))  # the explicit dump, not the exit one
    return _counted(dumps[0]) // requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=16, help="requests sent at a time")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    n, k = args.requests, args.in_flight
    sim_port = free_port()
    upstream = f"http://127.0.0.1:{sim_port}"
    sim = python("-m", "gateway.simulator", "--port", str(sim_port),
                 "--general-limit", "100000000", "--general-window", "1")  # fmt: skip
    counts: dict[str, int] = {}
    with process(sim, sim_port), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def gateway(port: int, *extra: str) -> list[str]:
            return python("-m", "gateway", "serve", "--port", str(port), "--upstream", upstream,
                          *extra)  # fmt: skip

        p = free_port()
        counts["baseline proxy"] = per_request(
            python("-m", "bench.baseline_proxy", str(p), upstream), p, n, work, k
        )
        p = free_port()
        policy = str(ROOT / "bench" / "passthrough-policy.toml")
        counts["gateway pass-through"] = per_request(gateway(p, "--policy", policy), p, n, work, k)
        body = asyncio.run(drive(f"{upstream}{PATH}", 1, 1))
        (work / "body.json").write_bytes(body)
        p = free_port()
        bare = python("bench/bare_server.py", "--port", str(p), "--body", str(work / "body.json"))
        counts["bare server"] = per_request(bare, p, n, work, k)
        p = free_port()
        low = python("bench/bare_server.py", "--port", str(p), "--body", str(work / "body.json"),
                     "--low-level")  # fmt: skip
        counts["bare server, low-level (no router)"] = per_request(low, p, n, work, k)
        p = free_port()
        counts["gateway cache hit"] = per_request(gateway(p), p, n, work, k)
        p = free_port()
        counts["gateway cache hit, --access-log misses"] = per_request(
            gateway(p, "--access-log", "misses"), p, n, work, k
        )
    base, bare_n = counts["baseline proxy"], counts["bare server"]
    lines = [f"{name}: {count:,} instructions/request" for name, count in counts.items()]
    lines.append(f"pass-through: baseline ÷ gateway = {base / counts['gateway pass-through']:.2f}")
    low_n = counts["bare server, low-level (no router)"]
    for name in ("gateway cache hit", "gateway cache hit, --access-log misses"):
        lines.append(f"{name}: bare ÷ gateway = {bare_n / counts[name]:.2f} "
                     f"(low-level bare ÷ gateway = {low_n / counts[name]:.2f})")  # fmt: skip
    for line in lines:
        print(line)  # noqa: T201
    append_results(
        f"Instructions per request (callgrind, {n} requests, {k} at a time)",
        f"python -m bench.instructions --requests {n} --in-flight {k}",
        lines,
    )


if __name__ == "__main__":
    main()
