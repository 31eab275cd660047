"""The Grafana dashboard: well-formed, every query parses, names only what the gateway exports."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.deploy.support import (
    all_panels,
    dashboard_targets,
    dashboard_variables,
    exported_series,
    load_dashboard,
    metric_names,
    promtool_parse,
    substitute,
    variable_queries,
)

ROWS = ["Overview", "Quota", "Cache", "Upstream", "Replay", "Infrastructure"]


def test_dashboard_has_the_six_rows_in_order() -> None:
    rows = [p["title"] for p in load_dashboard()["panels"] if p["type"] == "row"]
    assert rows == ROWS


def test_dashboard_is_a_provisionable_classic_model() -> None:
    dash = load_dashboard()
    assert isinstance(dash["schemaVersion"], int)
    assert 8 <= len(dash["uid"]) <= 40
    assert dash["title"]
    names = [v["name"] for v in dash["templating"]["list"]]
    assert names[0] == "datasource"
    assert {"job", "instance", "route"} <= set(names)

    ids = [p["id"] for p in dash["panels"]] + [
        inner["id"] for p in dash["panels"] for inner in p.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = Counter(p["title"] for _, p in all_panels(dash))
    assert all(n == 1 for n in titles.values()), titles  # the e2e expectations key on titles
    for _, panel in all_panels(dash):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] < pos["x"] + pos["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        assert panel.get("description"), f"{panel['title']}: say what the panel shows"


def test_no_query_invents_data() -> None:
    # `or vector(0)` would make an empty panel look alive; Grafana's noValue shows 0 instead.
    for t in dashboard_targets():
        assert "vector(" not in t.expr, t


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    exprs = [substitute(t.expr, dashboard_variables()) for t in dashboard_targets()]
    assert len(exprs) > 30
    result = promtool_parse(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_dashboard_names_only_metrics_the_gateway_exports(live_metrics: str) -> None:
    exported = exported_series(live_metrics)
    dash = load_dashboard()
    unknown = {
        (t.panel, name)
        for t in dashboard_targets(dash)
        for name in metric_names(substitute(t.expr, dashboard_variables()))
        if name not in exported
    }
    assert not unknown, f"dashboard queries name metrics /metrics does not expose: {unknown}"
    for query in variable_queries(dash):
        metric = query.removeprefix("label_values(").split(",")[0].strip()
        assert metric in exported, query
