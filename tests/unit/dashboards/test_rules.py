"""Alert rules: valid for promtool, each alert unit-tested firing and silent, runbooks exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from dashboards import metrics as m
from dashboards.inventory import used_metrics
from dashboards.rules import AlertThresholds, rule_groups

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CASES = HERE / "alerts_test.yaml"
# USD per replica-hour of the models in the recording-rule cases of alerts_test.yaml (a stack's
# come from its config: infra/config/cost_ceiling.replica_usd_per_hour).
PRICES = {"m1": 3.6, "m3": 1.0}
RULES = [r for g in rule_groups(replica_usd_per_hour=PRICES) for r in g["rules"]]
ALERTS = [r for r in RULES if "alert" in r]
REQUIRED = {  # the issue's list -> the alert(s) covering it
    "TTFT p95 above the SLO": ["LLMTimeToFirstTokenAboveSLO"],
    "queue build-up": ["LLMQueueBuildUp"],
    "KV cache saturated": ["LLMKVCacheSaturated"],
    "error ratio": ["LLMHighErrorRatio"],
    "a model with no healthy replica": ["LLMModelNoHealthyReplica"],
    "RayService not ready or stuck upgrading": ["RayServiceNotReady", "RayServiceUpgradeStuck"],
    "head pod restarted or near its memory limit": ["RayHeadPodRestarted", "RayHeadMemoryHigh"],
    "GPU XID error": ["GPUXidError"],
    "GPU too hot": ["GPUTooHot"],
    "a GPU pool at its limit with pods pending": ["GPUPoolAtLimitWithPendingPods"],
    "spot interruptions": ["SpotInterruptions"],
    "a scrape target down or absent": ["ScrapeTargetDown", "ScrapeTargetAbsent"],
    "a key near its monthly budget": ["TenantNearMonthlyBudget"],
    "tenant limits decided without Redis": ["TenantLimitsWithoutRedis"],
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run `make promtool` (Debian package `prometheus`)")
    return path


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    groups = rule_groups(replica_usd_per_hour=PRICES)
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(CASES, folder / CASES.name)
    return folder


def test_promtool_check_rules(rules_dir):
    out = subprocess.run([_promtool(), "check", "rules", str(rules_dir / "rules.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in out.stdout


def test_promtool_unit_tests_pass(rules_dir):
    out = subprocess.run([_promtool(), "test", "rules", CASES.name], cwd=rules_dir,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_unit_tests_catch_a_broken_rule(rules_dir, tmp_path):
    """The cases are not vacuous: with one threshold changed, promtool fails."""
    broken = rule_groups(AlertThresholds(queue_waiting_requests=100), PRICES)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": broken}))
    shutil.copy(CASES, tmp_path / CASES.name)
    out = subprocess.run([_promtool(), "test", "rules", CASES.name], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "LLMQueueBuildUp" in out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = yaml.safe_load(CASES.read_text())["tests"]
    firing, silent = set(), set()
    for group in cases:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    names = {a["alert"] for a in ALERTS}
    assert names - firing == set(), "alerts without a firing case"
    assert names - silent == set(), "alerts without a not-firing case"


def test_the_cost_rules_have_hand_checked_cases_and_every_recorded_name_used_is_recorded():
    cases = yaml.safe_load(CASES.read_text())["tests"]
    tested = {c["expr"] for g in cases for c in g.get("promql_expr_test", [])}
    assert {m.COST_MODEL_USD_PER_1M, m.COST_KEY_USD_PER_1M, m.COST_KEY_USD_H} <= tested
    recorded = {r["record"] for r in RULES if "record" in r}
    used = {k for k in used_metrics() if m.source_of(k) is m.Source.RULES}
    assert used and used <= recorded, used - recorded


def test_the_issue_list_is_covered():
    names = {a["alert"] for a in ALERTS}
    for need, alerts in REQUIRED.items():
        assert set(alerts) <= names, need


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces -> hyphens."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def test_every_alert_is_labelled_and_links_an_existing_runbook_section():
    anchors = _anchors((REPO / "docs" / "runbooks.md").read_text())
    for alert in ALERTS:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert["alert"]
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"], alert["alert"]
        doc, _, anchor = notes["runbook_url"].partition("#")
        assert doc == "docs/runbooks.md" and anchor in anchors, (alert["alert"], anchor)


def test_runbook_base_url_is_a_parameter():
    t = AlertThresholds(runbook_base_url="https://git.example/llm-platform/docs/runbooks.md")
    urls = {r["annotations"]["runbook_url"] for g in rule_groups(t) for r in g["rules"]
            if "alert" in r}
    assert all(u.startswith("https://git.example/llm-platform/docs/runbooks.md#") for u in urls)


def test_a_ttft_slo_that_is_not_a_histogram_bucket_is_rejected_by_name():
    with pytest.raises(ValidationError, match=r"ttft_p95_slo_s[\s\S]*2\.0s is not a bucket"):
        AlertThresholds(ttft_p95_slo_s=2.0)


def test_the_groups_validate_as_a_prometheusrule_against_the_upstream_crd():
    from tests.support.crds import validate_custom_resource

    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "llm-platform", "namespace": "monitoring"},
        "spec": {"groups": rule_groups()},
    }
    assert validate_custom_resource(obj) == []


def test_a_malformed_duration_is_rejected_by_name():
    with pytest.raises(ValidationError, match=r"queue_for[\s\S]*pattern"):
        AlertThresholds(queue_for="5 minutes")
