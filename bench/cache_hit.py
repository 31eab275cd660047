"""Cache-hit throughput and latency against a bare aiohttp server, measured in the same run.

    python -m bench.cache_hit [--duration 5] [--connections 64]

Starts the Harvest simulator, the gateway (memory cache) in front of it, and a bare aiohttp
server answering the gateway's cached body; warms the cache; loads each with ``wrk`` and prints
requests/s, p50/p99 and the gateway/bare ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1
from tests.support import free_port, wait_port

PATH = "/v2/users/me"
UA = "bench (bench@example.com)"


def wrk(url: str, seconds: int, connections: int, script: str | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"),
            "non2xx": float(errors.group(1)) if errors else 0.0}  # fmt: skip


def spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=64)
    args = p.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        sim_port, gw_port, bare_port = free_port(), free_port(), free_port()
        procs.append(spawn(["-m", "gateway.simulator", "--port", str(sim_port)]))
        wait_port(sim_port)
        gw = ["-m", "gateway", "serve", "--port", str(gw_port),
              "--upstream", f"http://127.0.0.1:{sim_port}"]  # fmt: skip
        procs.append(spawn(gw))
        wait_port(gw_port)
        url = f"http://127.0.0.1:{gw_port}{PATH}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN_1}",
                   "Harvest-Account-Id": ACCOUNT_ID_1, "User-Agent": UA}  # fmt: skip
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            body = r.read()
        time.sleep(0.2)
        body_file = tmp / "body.json"
        body_file.write_bytes(body)
        bare = ["bench/bare_server.py", "--port", str(bare_port), "--body", str(body_file)]
        procs.append(spawn(bare))
        wait_port(bare_port)
        script = tmp / "headers.lua"
        script.write_text("".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items()))
        # warm-up, then measure both in the same run
        wrk(url, 1, args.connections, str(script))
        wrk(f"http://127.0.0.1:{bare_port}{PATH}", 1, args.connections, None)
        base = wrk(f"http://127.0.0.1:{bare_port}{PATH}", args.duration, args.connections, None)
        hit = wrk(url, args.duration, args.connections, str(script))
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
            assert r.headers["X-Cache"] == "HIT", r.headers["X-Cache"]
        print(f"body {len(body)} B, {args.connections} connections, {args.duration}s")  # noqa: T201
        for name, m in (("bare aiohttp", base), ("gateway hit", hit)):
            line = (f"{name:14} {m['rps']:9.0f} req/s  p50 {m['p50']:.2f} ms  "
                    f"p99 {m['p99']:.2f} ms  non-2xx {m['non2xx']:.0f}")  # fmt: skip
            print(line)  # noqa: T201
        print(f"ratio gateway/bare: {hit['rps'] / base['rps']:.2f}x")  # noqa: T201
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        os.system(f"rm -rf {tmp}")


if __name__ == "__main__":
    main()
