"""Replay throughput and load time: ``python -m bench.cassette_replay [--seconds 5]``.

Measures, in one run on this machine:
- load time of a 10,000-interaction cassette (libyaml's C loader, and the pure-Python one);
- replay throughput (wrk) from a 10,000-interaction cassette vs a 10-interaction one, requests
  spread over every recorded path; target ratio >= 0.9;
- the same against a bare aiohttp server answering a fixed body of the same size (the cache
  is not merged on this branch, so this stands in for the cache-hit path).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

from gateway.core.interactions import to_interaction, with_length
from gateway.core.links import HARVEST_ID, upstream_moves
from gateway.stores import cassette_files as files
from gateway.stores.cassettes import CassetteLibrary
from tests.support import free_port, wait_port

API = "https://api.harvestapp.com"
HEADERS = {
    "Authorization": "Bearer bench",
    "Harvest-Account-Id": "111111",
    "User-Agent": "bench (bench@example.com)",
}


def body_for(i: int) -> bytes:
    entry = {
        "id": 1_000_000 + i, "spent_date": "2024-05-01", "hours": 1.5, "notes": "x" * 600,
        "user": {"id": 1100001, "name": "Maya Lindqvist"},
        "project": {"id": 1120001, "name": "Website", "code": "LS-01"},
        "task": {"id": 1130001, "name": "Design"}, "billable": True, "is_locked": False,
    }  # fmt: skip
    return json.dumps(entry).encode()


def make_cassette(root: Path, name: str, n: int) -> None:
    items = [
        with_length(
            to_interaction(
                method="GET", uri=f"{API}/v2/time_entries/{i}",
                request_headers=[("Harvest-Account-Id", "111111"), ("User-Agent", "b")],
                request_body=b"", status=200, reason="OK",
                response_headers=[("Content-Type", "application/json; charset=utf-8")],
                response_body=body_for(i), moves_back=upstream_moves(API, HARVEST_ID, "http://gw"),
            )
        )
        for i in range(n)
    ]  # fmt: skip
    files.write(root / f"{name}.yaml", items, [{}] * n, {})


def load_times(root: Path) -> dict[str, float]:
    import asyncio

    text = (root / "big.yaml").read_text()
    out = {}
    t = time.perf_counter()
    yaml.load(text, Loader=yaml.SafeLoader)
    out["pure_python_yaml_s"] = time.perf_counter() - t
    t = time.perf_counter()
    files.parse(text)
    out["c_yaml_parse_s"] = time.perf_counter() - t

    async def full() -> int:
        cassette = await CassetteLibrary(root).get("big")
        return len(cassette.loaded)

    t = time.perf_counter()
    count = asyncio.run(full())
    out["gateway_load_indexed_s"] = time.perf_counter() - t
    assert count == 10_000
    return out


def wrk(url: str, n_paths: int, seconds: int, script_dir: Path) -> float:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items())
    script = script_dir / f"paths{n_paths}.lua"
    script.write_text(
        textwrap.dedent(
            f"""
            {headers}
            local n = {n_paths}
            local i = 0
            request = function()
              i = i + 1
              return wrk.format("GET", "/v2/time_entries/" .. (i % n))
            end
            """
        )
    )
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m is None or non2xx:
        raise RuntimeError(f"wrk failed or got errors:\n{out}")
    return float(m.group(1))


BARE = """
import sys
from aiohttp import web
body = open(sys.argv[2], "rb").read()
async def h(request):
    return web.Response(body=body, content_type="application/json")
app = web.Application()
app.router.add_get("/{tail:.*}", h)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def first_answer(url: str) -> None:
    request = urllib.request.Request(url, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert resp.status == 200


def serve(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 20)
    return proc


def gateway_cmd(root: Path, cassette: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gateway", "serve", "--mode", "replay", "--port", str(port),
        "--cassette-dir", str(root), "--cassette", cassette, "--replay-repeat-last",
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    root = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    try:
        make_cassette(root, "small", 10)
        make_cassette(root, "big", 10_000)
        size_mb = (root / "big.yaml").stat().st_size / 1e6
        loads = load_times(root)
        (root / "body.json").write_bytes(body_for(0))
        bare = [sys.executable, "-c", BARE]
        servers: dict[str, tuple[Callable[[int], list[str]], int]] = {
            "bare_aiohttp": (lambda p: [*bare, str(p), str(root / "body.json")], 10),
            "replay_10": (lambda p: gateway_cmd(root, "small", p), 10),
            "replay_10000": (lambda p: gateway_cmd(root, "big", p), 10_000),
        }
        procs: list[subprocess.Popen[bytes]] = []
        urls: dict[str, str] = {}
        try:
            for label, (cmd_for, n) in servers.items():
                port = free_port()
                procs.append(serve(cmd_for(port), port))
                urls[label] = f"http://127.0.0.1:{port}"
                first_answer(f"{urls[label]}/v2/time_entries/0")  # waits for the cassette load
                wrk(urls[label], n, 1, root)  # warm-up
            # Interleaved rounds, best of each: the machine is shared, so noise comes in bursts.
            samples: dict[str, list[float]] = {label: [] for label in servers}
            for _ in range(args.rounds):
                for label, (_, n) in servers.items():
                    samples[label].append(wrk(urls[label], n, args.seconds, root))
            rates = {label: max(v) for label, v in samples.items()}
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures = {
        "cassette_10000_size_mb": round(size_mb, 2),
        **{k: round(v, 3) for k, v in loads.items()},
        **{f"{k}_rps": round(v) for k, v in rates.items()},
        "ratio_10000_vs_10": round(rates["replay_10000"] / rates["replay_10"], 3),
        "ratio_10000_vs_bare_aiohttp": round(rates["replay_10000"] / rates["bare_aiohttp"], 3),
    }
    report(figures, args.seconds, args.rounds)
    return 0


def report(figures: dict[str, float], seconds: int, rounds: int) -> None:
    for k, v in figures.items():
        print(f"{k:32s} {v}")  # noqa: T201
    results = Path(__file__).with_name("RESULTS.md")
    lines = [
        "",
        "## cassette_replay",
        "",
        f"`python -m bench.cassette_replay --seconds {seconds} --rounds {rounds}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        "wrk -t1 -c32, best of the interleaved rounds, gateway single process "
        "(default asyncio loop), JSON logs to /dev/null. "
        "Baseline: a bare aiohttp server returning a fixed body of the same size "
        "(for the cache-hit path, see bench.cache_hit in the same file).",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in figures.items()),
        "",
    ]
    with results.open("a") as f:
        if results.stat().st_size == 0:
            f.write("# Benchmark results\n")
        f.write("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
