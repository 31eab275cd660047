"""Load that holds (scaled down from ``python -m bench.load_hold``'s minute of 1,000 connections):
300 kept-alive connections across 50 accounts for 10 s against the simulator, each account with
a quota tight enough that most callers must wait or be told to come back.
"""

from __future__ import annotations

import pytest

from bench.load_hold import run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RSS_BOUND_MIB = 300


async def test_300_connections_across_50_accounts_hold(secrets, tmp_path):
    # 6 callers per account wait ~1.2 s for a slot, so a 0.5 s maximum makes 503s a daily event
    result = await run(connections=300, accounts=50, seconds=10.0, max_wait=0.5, log_dir=tmp_path)
    secrets.gateways += 1
    assert result.log_file is not None
    secrets.add_text("logs", "serve under load", result.log_file.read_text())
    secrets.add_text("metrics", "/metrics of serve under load", result.metrics_text)
    secrets.add_tokens(f"load-token-{a}" for a in ("300001", "300050"))
    assert result.unexpected == [], result.unexpected[:5]
    assert set(result.statuses) <= {"200", "503"}, result.statuses
    assert result.sim["status_200"] >= 0.6 * result.ideal_200  # the quota is used, not idled
    assert result.statuses["503"] > 0  # the limits were tight enough to need the designed 503
    assert result.gateway_429 == 0
    assert result.sim["status_429"] == 0
    assert result.sim["max_in_window"] <= result.limit
    assert len(result.rss_kb) >= 5
    assert max(result.rss_kb) < RSS_BOUND_MIB * 1024, result.table()
