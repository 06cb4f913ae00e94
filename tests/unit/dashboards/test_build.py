"""The dashboards: checked-in JSON equals the builder; every panel is described and guarded."""

from __future__ import annotations

import re

import pytest

from dashboards import build
from dashboards.spec import ALL

DASHBOARDS = build.all_dashboards()
SPECS = build.all_specs()


def test_checked_in_json_is_what_the_builder_makes():
    assert build.stale_files() == [], "run `make dashboards` and commit dashboards/json/"


def test_check_mode_fails_on_a_stale_file(tmp_path):
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--check", "--out", str(tmp_path)]) == 0
    victim = tmp_path / "llm-overview.json"
    victim.write_text(victim.read_text().replace("LLM overview", "LLM overview (edited)"))
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    assert build.stale_files(tmp_path) == ["llm-overview.json"]


def test_the_six_dashboards_exist_with_unique_uids():
    assert set(DASHBOARDS) == {
        "llm-overview.json", "llm-engine-saturation.json", "ray-serve.json",
        "gpu-fleet.json", "capacity-cost.json", "tenants.json",
    }
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)


def _panels(model):
    return [p for p in model["panels"] if p["type"] != "row"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_describes_itself_and_names_every_metric_it_queries(name):
    spec = SPECS[name]
    panels = _panels(DASHBOARDS[name])
    assert [p["title"] for p in panels] == [p.title for p in spec.panels]
    for panel, panel_spec in zip(panels, spec.panels, strict=True):
        assert panel["targets"], panel["title"]
        assert panel_spec.metrics, panel["title"]
        for metric in panel_spec.metrics:
            assert f"`{metric}`" in panel["description"], (panel["title"], metric)
            assert any(metric in t["expr"] for t in panel["targets"]), (panel["title"], metric)
        assert len(panel["description"].split("\n\nMetrics:")[0]) > 20, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_rates_use_grafana_rate_interval_and_queries_use_the_variables(name):
    model = DASHBOARDS[name]
    variables = {v["name"] for v in model["templating"]["list"]}
    assert "datasource" in variables and "cluster" in variables
    for panel in _panels(model):
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["datasource"]["uid"] == "${datasource}"
            for window in re.findall(r"\b(?:rate|increase)\([^\[]*\[([^\]]+)\]", expr):
                assert window in {"$__rate_interval", "$__range"}, (panel["title"], expr)
            for var in re.findall(r"\$(\w+)", expr):
                assert var in variables or var.startswith("__"), (panel["title"], var)
    for v in model["templating"]["list"][1:]:
        assert v["includeAll"] and v["multi"] and v["allValue"] == ALL, v["name"]


def test_overview_and_engine_filter_by_cluster_and_model():
    for name in ("llm-overview.json", "llm-engine-saturation.json"):
        names = [v["name"] for v in DASHBOARDS[name]["templating"]["list"]]
        assert names == ["datasource", "cluster", "model"]
        for panel in _panels(DASHBOARDS[name]):
            for target in panel["targets"]:
                assert 'ray_io_cluster=~"$cluster"' in target["expr"], panel["title"]


def test_no_removed_vllm_metric_names():
    """Names vLLM removed before 0.29 (../shared/notes/observability.md) stay out."""
    removed = ("gpu_cache_usage_perc", "gpu_prefix_cache", "time_per_output_token_seconds",
               "num_requests_swapped", "cpu_cache_usage_perc", "time_in_queue_requests",
               "avg_prompt_throughput", "avg_generation_throughput", "vllm:")
    text = "".join(build.dump(m) for m in DASHBOARDS.values())
    for name in removed:
        assert name not in text
