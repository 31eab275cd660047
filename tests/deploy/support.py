"""Reading the shipped deploy files and checking PromQL against what the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import project_root

DEPLOY = project_root() / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "harvest-gateway.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
README = project_root() / "README.md"

# Series Prometheus writes itself for every target; rules may name them.
PROMETHEUS_SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
GATEWAY_JOB = "harvest-gateway"


def tool(name: str) -> str:
    """Path of a Prometheus binary; missing is a failure (``.ci/run`` installs it)."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (apt-get install prometheus)")
    return path


# --- the dashboard -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    row: str
    panel: str
    ref: str
    expr: str  # as written, with Grafana variables


def load_dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return doc


def all_panels(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(row title, panel)`` for every non-row panel, nested in collapsed rows or not."""
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            for inner in panel.get("panels", []):
                yield row, inner
        else:
            yield row, panel


def dashboard_targets(dashboard: dict[str, Any] | None = None) -> list[Target]:
    dashboard = dashboard or load_dashboard()
    return [
        Target(row, panel["title"], t["refId"], t["expr"])
        for row, panel in all_panels(dashboard)
        for t in panel.get("targets", [])
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    out = []
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]
            out.append(q["query"] if isinstance(q, dict) else q)
    return out


# Grafana's built-in intervals, and values for the dashboard's own variables.
_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables so the expression is plain PromQL; unknown ones fail loudly."""
    table = {**_BUILTINS, **values}

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in table:
            raise KeyError(f"no test value for Grafana variable ${name} in {expr!r}")
        return table[name]

    return _VARIABLE.sub(one, expr)


def dashboard_variables(job: str = GATEWAY_JOB) -> dict[str, str]:
    return {"job": job, "instance": ".*", "route": ".*", "datasource": "prometheus"}


# --- alert rules -------------------------------------------------------------------------------


def load_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text("utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


# --- PromQL: parse with promtool, list metric names ---------------------------------------------


def promtool_parse(exprs: Iterable[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """Parse expressions with Prometheus's own parser: as recording rules for ``check rules``."""
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = workdir / "parse-check.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}), "utf-8")
    return subprocess.run(
        [tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan", "start", "end"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (the parse itself is promtool's job).

    Strings, label matchers, ranges and grouping clauses are removed first; what remains that
    is an identifier, not a keyword and not a function call, is a metric name.
    """
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    return {
        m.group(1)
        for m in _IDENT.finditer(text)
        if m.group(2) is None and m.group(1).lower() not in _KEYWORDS
    }


def exported_series(metrics_text: str) -> set[str]:
    """Every series name a ``/metrics`` page can produce, families without samples included."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
