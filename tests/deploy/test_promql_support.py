"""The PromQL helpers the deploy checks rely on: they must find names and catch bad syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.support import exported_series, metric_names, promtool_parse, substitute


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (job) (rate(a_total{route="/v2/{id}", x=~"b|c"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le, quota) (rate(h_bucket[1m]))) > 10", {"h_bucket"}),
        ("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0.05", {"a_total", "b_total"}),
        ("max by (instance) (g) == bool 1 unless on (instance) other offset 5m", {"g", "other"}),
        ('count(x{y="sum(z)"}) or vector(1e3)', {"x"}),
        ("topk(10, sum(rate(c_total[1m])) without (instance))", {"c_total"}),
    ],
)
def test_metric_names_finds_selectors_only(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_replaces_grafana_variables_and_refuses_unknown_ones() -> None:
    out = substitute(
        'rate(x{job=~"$job", i=~"${instance}"}[$__rate_interval])', {"job": "j", "instance": ".*"}
    )
    assert out == 'rate(x{job=~"j", i=~".*"}[1m])'
    with pytest.raises(KeyError, match="account"):
        substitute('x{a="$account"}', {})


def test_promtool_parse_accepts_good_and_rejects_bad_promql(tmp_path: Path) -> None:
    assert promtool_parse(["sum(rate(x_total[5m]))"], tmp_path).returncode == 0
    bad = promtool_parse(["sum(rate(x_total[5m])", "rate(x_total)"], tmp_path)
    assert bad.returncode != 0
    assert "parse error" in (bad.stdout + bad.stderr).lower()


def test_exported_series_includes_families_without_samples() -> None:
    text = (
        "# HELP a_total A\n# TYPE a_total counter\n"
        "# HELP h Hist\n# TYPE h histogram\n"
        "# HELP g G\n# TYPE g gauge\ng 1.0\n"
    )
    assert {"a_total", "h_bucket", "h_count", "h_sum", "g"} <= exported_series(text)
    assert "h" not in exported_series(text)
