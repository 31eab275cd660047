"""Shared benchmark plumbing: start servers as subprocesses, drive them with wrk, parse results.

Every benchmark compares the gateway with a baseline measured in the same run: the machines
are shared and noisy, so only ratios are meaningful.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1
from tests.support import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"

# What the HTTP benchmarks ask for: one admin's own user, cacheable and small.
PATH = "/v2/users/me"
HEADERS = {
    "Authorization": f"Bearer {ADMIN_TOKEN_1}",
    "Harvest-Account-Id": ACCOUNT_ID_1,
    "User-Agent": "bench (bench@example.com)",
}


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    requests: int = 0
    cpu_us: float = 0.0  # the server's CPU time (user + system) per request, if measured

    def line(self) -> str:
        cpu = f", server CPU {self.cpu_us:,.0f} us/request" if self.cpu_us else ""
        return (
            f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"errors {self.errors}, non-2xx {self.non_2xx}{cpu}"
        )


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (``--workers``), from
    /proc. Unlike requests per second, CPU per request does not depend on what else the
    machine's cores were doing meanwhile (the load generator, the simulator, the neighbours)."""
    total, todo = 0.0, [pid]
    while todo:
        proc = Path("/proc") / str(todo.pop())
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS
            for task in (proc / "task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return total


def wrk_cpu(pid: int, url: str, headers: dict[str, str], **kwargs: Any) -> WrkResult:
    """``wrk`` against the server ``pid``, with that server's CPU time per request."""
    before = cpu_seconds(pid)
    result = wrk(url, headers, **kwargs)
    used = cpu_seconds(pid) - before
    return replace(result, cpu_us=used / max(result.requests, 1) * 1e6)


@contextlib.contextmanager
def process(
    args: Sequence[str],
    port: int,
    env: dict[str, str] | None = None,
    *,
    startup: float = 20.0,
    stop: float = 10.0,
) -> Iterator[int]:
    """Run ``args`` (which must listen on ``port``) for the block; yields the pid."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(
        list(args), cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, startup)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(stop)
        except subprocess.TimeoutExpired:
            proc.kill()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """``cmd`` run on the CPUs ``cpus`` (``taskset -c`` syntax, e.g. "0"), or as it is."""
    if cpus is None:
        return cmd
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is not installed (util-linux)")
    return ["taskset", "-c", cpus, *cmd]


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    headers: dict[str, str],
    *,
    seconds: int = 8,
    connections: int = 64,
    threads: int = 2,
    pause_ms: int = 0,
    cpus: str | None = None,
) -> WrkResult:
    """wrk's figures; ``pause_ms`` > 0 makes each connection wait that long between requests
    (wrk's ``delay``), for latency at a set load rather than at saturation."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        for name, value in headers.items():
            script.write(f'wrk.headers["{name}"] = "{value}"\n')
        if pause_ms > 0:
            script.write(f"function delay() return {pause_ms} end\n")
    try:
        out = subprocess.run(
            pinned([exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                    "-s", script.name, url], cpus),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(m.group(1)) if (m := re.search(r"(\d+) requests in", out)) else 0
    pct = re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)
    lat = {p: _ms(v, u) for p, v, u in pct}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return WrkResult(rps, lat.get("50", 0.0), lat.get("99", 0.0), errors, non_2xx, total)


def median_of(results: list[WrkResult]) -> WrkResult:
    """The median run by throughput, carrying the median CPU per request of all runs."""
    ordered = sorted(results, key=lambda r: r.rps)
    cpu = sorted(r.cpu_us for r in results)[len(results) // 2]
    return replace(ordered[len(ordered) // 2], cpu_us=cpu)


def paired_ratio(runs: list[WrkResult], baseline: list[WrkResult]) -> tuple[float, float]:
    """Medians of the per-round ratios (throughput, then capacity: CPU per request, baseline ÷
    server) of rounds run back to back. The machine's speed drifts between rounds by more than
    the difference measured; each round's pair shares its drift, so their ratio does not."""
    rps = sorted(r.rps / b.rps for r, b in zip(runs, baseline, strict=True))
    cpu = sorted(b.cpu_us / r.cpu_us for r, b in zip(runs, baseline, strict=True) if r.cpu_us)
    return rps[len(rps) // 2], cpu[len(cpu) // 2] if cpu else 0.0


def append_results(title: str, command: str, lines: list[str]) -> None:
    import datetime

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## {title}\n\n`{command}`, {stamp}, {os.cpu_count()} cores\n\n"
    text += "\n".join(f"- {line}" for line in lines) + "\n"
    with RESULTS.open("a") as fh:
        fh.write(text)


__all__ = [
    "HEADERS",
    "PATH",
    "ROOT",
    "WrkResult",
    "append_results",
    "cpu_seconds",
    "free_port",
    "median_of",
    "paired_ratio",
    "pinned",
    "process",
    "wrk",
    "wrk_cpu",
]  # fmt: skip
