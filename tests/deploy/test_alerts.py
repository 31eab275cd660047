"""Prometheus config and alert rules: they load, fire when they should, name real metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.support import (
    ALERTS,
    COMPOSE,
    GATEWAY_JOB,
    PROMETHEUS_CONFIG,
    PROMETHEUS_SYNTHETIC,
    README,
    exported_series,
    load_rules,
    metric_names,
    tool,
)

REQUIRED_ALERTS = {
    "HarvestUpstream429",  # any upstream 429
    "HarvestQuotaWaitHigh",  # queue-wait p95 high
    "HarvestGateway5xxRatioHigh",  # 5xx ratio
    "HarvestRedisDown",
    "HarvestLimiterDegraded",
}
HERE = Path(__file__).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules_accepts_the_alerts() -> None:
    result = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(load_rules())} rules found" in result.stdout


def test_promtool_check_config_accepts_the_prometheus_config() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_the_series_that_should_trip_them() -> None:
    # Unit tests of every alert's expression, `for` and templated annotations.
    result = run(tool("promtool"), "test", "rules", str(HERE / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (HERE / "alerts.test.yml").read_text()))
    assert tested == {r["alert"] for r in load_rules()}, "every alert needs a promtool test"


def test_the_required_alerts_exist_and_say_what_to_do() -> None:
    rules = load_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    readme = README.read_text("utf-8")
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.MULTILINE)}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"], rule["alert"]
        assert notes["description"], rule["alert"]
        anchor = notes["runbook_url"].removeprefix("README.md#")
        assert anchor in anchors, f"{rule['alert']}: README has no section #{anchor}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


async def test_alert_rules_name_only_metrics_the_gateway_exports(live_metrics: str) -> None:
    exported = exported_series(live_metrics) | PROMETHEUS_SYNTHETIC
    for rule in load_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)


def test_prometheus_scrapes_both_compose_replicas_and_loads_the_alerts() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
    assert config["rule_files"] == [ALERTS.name]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == GATEWAY_JOB]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    services = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]
    gateways = {name for name in services if name.startswith("gateway")}
    assert targets == {f"{name}:8080" for name in gateways}
    # The `up` alert selects the job by the name used here.
    down = next(r for r in load_rules() if r["alert"] == "HarvestGatewayDown")
    assert f'job="{GATEWAY_JOB}"' in down["expr"]
