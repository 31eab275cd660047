"""``serve --workers N``: N processes share the port (SO_REUSEPORT) and stop together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support import RedisServer, free_port, project_root, wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def healthz_pid(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return int(json.load(resp)["pid"])


def test_two_workers_answer_on_one_port_and_stop_on_sigterm(redis_service: RedisServer) -> None:
    port, dead = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers", "2",
         "--redis-url", redis_service.url, "--upstream", f"http://127.0.0.1:{dead}"],
        cwd=project_root(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_port(port)
        pids: set[int] = set()
        deadline = time.monotonic() + 30  # the second worker may still be starting
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(healthz_pid(port))  # the kernel spreads connections over both listeners
            time.sleep(0.01)
        assert len(pids) == 2, pids
        assert proc.pid not in pids  # the parent only supervises
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_served_process_freezes_its_startup_heap_for_the_collector() -> None:
    code = (
        "import gc; from gateway.web.workers import GC_THRESHOLD, tune_gc; tune_gc(); "
        "assert gc.get_threshold() == GC_THRESHOLD; assert gc.get_freeze_count() > 10_000"
    )
    subprocess.run([sys.executable, "-c", code], cwd=project_root(), check=True)
