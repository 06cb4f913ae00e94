"""The PromQL helpers render valid, guarded PromQL; every dashboard query parses (promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from dashboards import promql as q
from dashboards.build import all_specs
from tools.dashboards_check import QueryResult, report, substitute


def test_ratio_is_guarded_against_zero_and_absent_numerators():
    text = str(q.ratio(q.sum_by(q.rate(q.sel("e_total")), "a"),
                       q.sum_by(q.rate(q.sel("r_total")), "a")))
    assert text == (
        "((sum by(a) (rate(e_total[$__rate_interval]))) or "
        "((sum by(a) (rate(r_total[$__rate_interval]))) * (0))) / "
        "(clamp_min(sum by(a) (rate(r_total[$__rate_interval])), 1e-09))"
    )


def test_quantile_only_where_the_histogram_saw_requests():
    text = str(q.quantile(0.95, "x_seconds_bucket", by=["m"], regex={"m": "$model"}))
    assert text.startswith("(histogram_quantile(0.95, sum by(le, m) (rate(x_seconds_bucket{")
    assert "and on(m) ((sum by(m) (rate(x_seconds_count{" in text
    with pytest.raises(ValueError, match="_bucket"):
        q.quantile(0.5, "x_seconds")


def test_on_with_no_labels_renders_on_parentheses():
    assert str(q.and_(q.sel("a"), q.sel("b"), on=())) == "(a) and on() (b)"
    assert str(q.and_(q.sel("a"), q.sel("b"))) == "(a) and (b)"


def test_label_set_quotes_its_strings():
    text = str(q.label_set(q.func("absent", q.sel("up", regex={"job": "x.*"})), "component", "x"))
    assert text == 'label_replace(absent(up{job=~"x.*"}), "component", "x", "", "")'


def test_metric_names_walks_the_whole_tree():
    expr = q.div(q.sum_by(q.rate(q.sel("a_total"))), q.over_time(
        "sum_over_time", q.mul(q.sel("b"), q.sel("c"), on=["pod"], group_left=True), "1h", "5m"))
    assert q.metric_names(expr) == {"a_total", "b", "c"}


def test_substitute_fills_grafana_variables():
    assert substitute('x{a=~"$cluster", b=~"${model}"}[$__rate_interval]',
                      {"cluster": "local"}) == 'x{a=~"local", b=~".*"}[1m]'


def test_report_counts_panels_with_data():
    text = report([
        QueryResult("d.json", "p1", "x", 2, 0),
        QueryResult("d.json", "p2", "y", 0, 0),
        QueryResult("d.json", "p2", "z", 1, 0),
    ])
    assert "DATA     p1" in text and "NO DATA  p2" in text
    assert text.rstrip().endswith("1/2 panels returned data")


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """Each panel query (variables substituted as Grafana would) as a recording rule: promtool
    parses them all, including the GPU and capacity panels the local e2e cannot fill."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: run `make promtool` (Debian package `prometheus`)")
    rules = []
    for spec in all_specs().values():
        for var in spec.variables:
            rules.append({"record": f"check:{spec.uid.replace('-', '_')}:var",
                          "expr": substitute(str(var.query), {})})
        for panel in spec.panels:
            for query in panel.queries:
                rules.append({"record": f"check:{spec.uid.replace('-', '_')}",
                              "expr": substitute(query.text, {})})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(rules) > 40
