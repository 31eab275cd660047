"""The session's secret scan can fail: a leaking log, a leaking cassette, and a scan of nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gateway.simulator.data import ADMIN_TOKEN_1, MEMBER_TOKEN_2
from tests.secret_scan import SecretRegistry, simulator_tokens, verdict
from tests.support import project_root


def registry_with(log: str, metrics: str = "harvestgw_requests_total 1.0\n") -> SecretRegistry:
    registry = SecretRegistry(gateways=1)
    registry.add_tokens(simulator_tokens())
    registry.add_text("logs", "log of gateway A", log)
    registry.add_text("metrics", "/metrics of gateway A", metrics)
    return registry


def test_the_simulators_tokens_are_all_known():
    assert {ADMIN_TOKEN_1, MEMBER_TOKEN_2, "sim-refresh-111111"} <= simulator_tokens()


def test_a_leaking_log_fails_and_the_report_never_prints_the_token_whole():
    registry = registry_with('{"event": "request", "auth": "Bearer sim-admin-111111"}\n')
    report = registry.scan()
    assert [x.source for x in report.leaks] == ["log of gateway A"]
    reason = verdict(report, registry)
    assert reason is not None
    assert "LEAKS" in reason
    assert ADMIN_TOKEN_1 not in reason


def test_a_leaking_cassette_fails(tmp_path):
    registry = registry_with("{}\n")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "c.yaml").write_text(f"Authorization: [Bearer {MEMBER_TOKEN_2}]\n")
    registry.add_cassette_dir(tmp_path)
    report = registry.scan()
    assert report.files == 1
    assert [x.source for x in report.leaks] == [str(tmp_path / "deep" / "c.yaml")]


def test_a_clean_scan_passes_but_a_scan_of_nothing_does_not():
    clean = registry_with('{"event": "request"}\n')
    assert verdict(clean.scan(), clean) is None
    empty = SecretRegistry(gateways=3)
    empty.add_tokens(simulator_tokens())
    reason = verdict(empty.scan(), empty)
    assert reason is not None
    assert "looked at nothing" in reason


def test_short_values_are_not_tokens():
    registry = SecretRegistry()
    registry.add_tokens(["x", "", None, "abcdefgh"])
    assert registry.tokens == {"abcdefgh"}


LEAKY_SESSION = """
    from io import StringIO

    from gateway.settings import Settings
    from tests.support import free_port

    async def test_a_gateway_whose_log_{name}(start_gateway):
        stream = StringIO()
        await start_gateway(Settings(upstream=f"http://127.0.0.1:{{free_port()}}"),
                            log_stream=stream)
        stream.write({text!r})
"""


def run_session(tmp_path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """A whole pytest session with the suite's conftest: the hook runs as it does for us."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / f"test_{name}.py").write_text(
        textwrap.dedent(LEAKY_SESSION.format(name=name, text=text))
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-o", "asyncio_mode=auto", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(project_root())},
    )  # fmt: skip


def test_the_session_hook_fails_a_run_whose_tests_all_passed_but_leaked(tmp_path):
    leaky = run_session(tmp_path, "leaks", f"token={ADMIN_TOKEN_1}\n")
    assert "1 passed" in leaky.stdout, leaky.stdout + leaky.stderr
    assert leaky.returncode == 1
    assert "LEAKS" in leaky.stdout
    assert ADMIN_TOKEN_1 not in leaky.stdout


def test_the_session_hook_passes_a_clean_run_and_says_what_it_scanned(tmp_path):
    clean = run_session(tmp_path, "is_clean", "nothing secret\n")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "secret scan:" in clean.stdout
    assert ": clean" in clean.stdout
