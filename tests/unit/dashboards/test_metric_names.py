"""Metric names from exporters this machine cannot run, checked against upstream lists.

../shared/notes/metrics-upstream.txt lists the names read from upstream source at the pinned
versions: dcgm-exporter Helm chart 4.8.2 (deployment/templates/metrics-configmap.yaml, image
4.5.3-4.8.2), Karpenter 1.14.1 (kubernetes-sigs/karpenter and aws/karpenter-provider-aws
v1.14.1, pkg/**), KubeRay 1.7.0 (ray-operator/controllers/ray/metrics/*.go) and
kube-state-metrics v2.20.0 (docs/metrics/, bundled by kube-prometheus-stack 88.5.3). Ray, Serve
and vLLM names are checked against a real scrape instead (tests/e2e/test_observability.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dashboards import metrics as m
from dashboards.inventory import used_metrics

ROOT = Path(__file__).resolve().parents[3]
UPSTREAM = Path(os.environ.get(
    "LLM_PLATFORM_METRICS_UPSTREAM", ROOT.parent / "shared" / "notes" / "metrics-upstream.txt"
))
SECTIONS = {  # source -> the list's section titles (prefix) whose names it may use
    m.Source.DCGM: ("DCGM exporter — Helm chart dcgm-exporter 4.8.2",),  # ON by default only
    m.Source.KARPENTER: ("Karpenter 1.14.1",),
    m.Source.KUBERAY: ("KubeRay 1.7.0",),
    m.Source.KSM: ("kube-state-metrics v2.20.0",),
}


def _sections() -> dict[str, set[str]]:
    if not UPSTREAM.is_file():
        pytest.fail(f"{UPSTREAM} missing: the upstream metric lists live in ../shared/notes "
                    "(or set LLM_PLATFORM_METRICS_UPSTREAM)")
    out: dict[str, set[str]] = {}
    title = ""
    for line in UPSTREAM.read_text().splitlines():
        if line.startswith("# "):
            title = line[2:].strip()
            out[title] = set()
        elif line.strip() and not line.startswith("#") and title:
            out[title].add(line.strip())
    return out


def _allowed(source: m.Source, sections: dict[str, set[str]]) -> set[str]:
    names: set[str] = set()
    for title, found in sections.items():
        if title.startswith(SECTIONS[source]):
            names |= found
    return names


def test_the_upstream_list_has_every_section():
    sections = _sections()
    for source in SECTIONS:
        assert len(_allowed(source, sections)) > 10, source


@pytest.mark.parametrize("source", list(SECTIONS), ids=str)
def test_names_used_exist_upstream_at_the_pinned_version(source):
    allowed = _allowed(source, _sections())
    used = {k: v for k, v in used_metrics().items() if m.source_of(k) is source}
    assert used, f"no {source} metric used"
    unknown = {k: sorted(v) for k, v in used.items() if k not in allowed}
    assert unknown == {}


def test_dcgm_names_are_in_the_chart_default_not_only_in_the_commented_out_list():
    """customMetrics REPLACES the default list: a commented-out counter is not exported."""
    sections = _sections()
    default = _allowed(m.Source.DCGM, sections)
    used = {k for k in used_metrics() if m.source_of(k) is m.Source.DCGM}
    assert used <= default


def test_every_metric_used_is_declared_with_its_source():
    for name in used_metrics():
        m.source_of(name)  # KeyError names an undeclared metric


def test_ray_names_follow_ray_2_60_export_rules():
    """Counters only with `_total`, Serve latencies in ms, vLLM as `ray_vllm_*`."""
    ray = {k for k in used_metrics() if m.source_of(k) is m.Source.RAY}
    for name in ray:
        assert not name.startswith("vllm:"), name
        if "latency" in name and name.startswith("ray_serve"):
            assert "_latency_ms" in name, name
    counters = {m.SERVE_HTTP_REQUESTS, m.SERVE_REQUESTS, m.SERVE_ERRORS, m.SERVE_REPLICA_STARTS,
                m.VLLM_PREEMPTIONS, m.VLLM_PREFIX_HITS, m.VLLM_PREFIX_QUERIES,
                m.VLLM_PROMPT_TOKENS, m.VLLM_GENERATION_TOKENS, m.VLLM_REQUEST_SUCCESS}
    assert all(c.endswith("_total") for c in counters)
