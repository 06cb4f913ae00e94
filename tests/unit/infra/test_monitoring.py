"""infra/platform/monitoring.py: chart values against upstream, monitors against the CRDs,
routing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import labels
from infra.config import ConfigError, validate
from infra.config.monitoring import MonitoringConfig
from infra.foundation import karpenter
from infra.platform import gpu, monitoring
from infra.platform.monitoring import Receivers
from tests.support.crds import validate_custom_resource
from tests.support.upstream import load_yaml, upstream_file

# Every key of every release is checked against its chart (and sub-charts) in
# tests/render/test_helm_values.py; the tests here check what the values mean.
ALL_RECEIVERS = [Receivers(), Receivers(slack=True), Receivers(webhook=True),
                 Receivers(slack=True, webhook=True)]


def _values(receivers: Receivers | None = None) -> dict[str, Any]:
    return monitoring.stack_values(MonitoringConfig(), receivers or Receivers())


# ----------------------------------------------------------------------------- chart values
def test_dcgm_values_keep_the_gpu_users_pod_labels() -> None:
    values = gpu.dcgm_exporter_values()
    assert values["kubernetes"]["enablePodLabels"] is True
    allow = values["kubernetes"]["podLabelAllowlistRegex"]
    # The chart joins the list with "," into one env var: a comma would split a pattern.
    assert allow and not any("," in p for p in allow)
    assert labels.GPU_TOLERATION in values["tolerations"]


def test_karpenter_service_monitor_keeps_pod_namespaces_and_fits_the_crd() -> None:
    values = karpenter.controller_values("c", "q")
    sm = values["serviceMonitor"]
    assert sm["enabled"] is True and sm["endpointConfig"]["honorLabels"] is True
    # The chart writes endpointConfig into its one endpoint (charts/karpenter/templates/
    # servicemonitor.yaml): the merged endpoint must be a valid ServiceMonitor endpoint.
    rendered = {
        "apiVersion": monitoring.MONITORING_API, "kind": "ServiceMonitor",
        "metadata": {"name": "karpenter", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter"}},
                 "endpoints": [{"port": "http-metrics", "path": "/metrics",
                                **sm["endpointConfig"]}]},
    }
    assert validate_custom_resource(rendered) == []


def test_every_component_runs_on_the_system_nodes() -> None:
    v = _values()
    placed = {
        "prometheusOperator": v["prometheusOperator"],
        "admission webhook job": v["prometheusOperator"]["admissionWebhooks"]["patch"],
        "prometheus": v["prometheus"]["prometheusSpec"],
        "alertmanager": v["alertmanager"]["alertmanagerSpec"],
        "grafana": v["grafana"],
        "kube-state-metrics": v["kube-state-metrics"],
    }
    for where, block in placed.items():
        assert block["nodeSelector"] == {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_SYSTEM}, where
        assert labels.SYSTEM_TOLERATION in block["tolerations"], where


def test_monitor_and_rule_selection_does_not_depend_on_the_release_name() -> None:
    spec = _values()["prometheus"]["prometheusSpec"]
    chart = load_yaml(upstream_file("kube-prometheus-stack", "88.5.3", "values.yaml"))
    defaults = chart["prometheus"]["prometheusSpec"]
    nil_flags = [k for k in defaults if k.endswith("SelectorNilUsesHelmValues")]
    assert len(nil_flags) >= 3  # serviceMonitor, podMonitor, rule (+ probe, scrapeConfig)
    for flag in nil_flags:
        assert spec[flag] is False, flag
        # No explicit selector either: nil + flag false = select everything.
        assert not spec.get(flag.replace("NilUsesHelmValues", "")), flag


def test_prometheus_keeps_its_data_on_gp3_with_a_size_cap_below_the_volume() -> None:
    cfg = MonitoringConfig(prometheus_volume_gib=200, prometheus_retention="30d")
    spec = monitoring.stack_values(cfg, Receivers())["prometheus"]["prometheusSpec"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "200Gi"
    assert spec["retention"] == "30d"
    assert spec["retentionSize"] == "170GB"  # 85% of the volume


def test_grafana_password_comes_from_our_secret() -> None:
    admin = _values()["grafana"]["admin"]
    assert admin == {"existingSecret": monitoring.GRAFANA_ADMIN_SECRET,
                     "userKey": monitoring.GRAFANA_USER_KEY,
                     "passwordKey": monitoring.GRAFANA_PASSWORD_KEY}


def test_kube_state_metrics_keeps_pool_and_capacity_type_node_labels() -> None:
    allow = _values()["kube-state-metrics"]["metricLabelsAllowlist"]
    nodes = next(a for a in allow if a.startswith("nodes="))
    kept = nodes.removeprefix("nodes=[").removesuffix("]").split(",")
    assert {labels.GPU_POOL_LABEL, "karpenter.sh/capacity-type"} <= set(kept)


# ---------------------------------------------------------------------------- alertmanager
def _receiver_names(cfg: dict[str, Any]) -> set[str]:
    return {r["name"] for r in cfg["receivers"]}


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    out = [route]
    for child in route.get("routes", []):
        out += _routes(child)
    return out


@pytest.mark.parametrize("receivers", ALL_RECEIVERS)
def test_every_route_names_a_defined_receiver(receivers: Receivers) -> None:
    cfg = monitoring.alertmanager_config(receivers)
    assert {r["receiver"] for r in _routes(cfg["route"])} <= _receiver_names(cfg)


def test_no_receiver_configured_notifies_no_one() -> None:
    cfg = monitoring.alertmanager_config(Receivers())
    assert _receiver_names(cfg) == {"null"}
    assert cfg["route"]["receiver"] == "null"
    assert _values()["alertmanager"]["alertmanagerSpec"]["secrets"] == []


def test_criticals_page_and_go_to_slack_urls_read_from_the_mounted_secret() -> None:
    receivers = Receivers(slack=True, webhook=True)
    cfg = monitoring.alertmanager_config(receivers)
    assert cfg["route"]["receiver"] == "slack"
    pager = next(r for r in cfg["route"]["routes"] if r["receiver"] == "pager")
    assert pager["matchers"] == ['severity = "critical"'] and pager["continue"] is True
    by_name = {r["name"]: r for r in cfg["receivers"]}
    slack = by_name["slack"]["slack_configs"][0]
    hook = by_name["pager"]["webhook_configs"][0]
    # Files, never URLs: the URLs live only in the Secret mounted at SECRETS_MOUNT.
    assert "api_url" not in slack and "url" not in hook
    assert slack["api_url_file"] == f"{monitoring.SECRETS_MOUNT}/{monitoring.SLACK_KEY}"
    assert hook["url_file"] == f"{monitoring.SECRETS_MOUNT}/{monitoring.WEBHOOK_KEY}"
    spec = monitoring.stack_values(MonitoringConfig(), receivers)["alertmanager"]
    assert spec["alertmanagerSpec"]["secrets"] == [monitoring.RECEIVERS_SECRET]


def test_info_alerts_and_the_watchdog_notify_no_one() -> None:
    routes = monitoring.alertmanager_config(Receivers(slack=True))["route"]["routes"]
    muted = {m for r in routes if r["receiver"] == "null" for m in r["matchers"]}
    assert {'alertname = "Watchdog"', 'severity = "info"'} <= muted


def _inhibits(rule: dict[str, Any], source: dict[str, str], target: dict[str, str]) -> bool:
    """Alertmanager's inhibition for `=`, `=~` matchers and `equal` (missing == empty)."""
    import re

    def matches(matchers: list[str], alert: dict[str, str]) -> bool:
        for m in matchers:
            name, op, value = re.match(r'^(\w+) (=~|=) "?(.*?)"?$', m).groups()  # type: ignore[union-attr]
            got = alert.get(name, "")
            if (op == "=" and got != value) or (op == "=~" and not re.fullmatch(value, got)):
                return False
        return True

    return (matches(rule["source_matchers"], source) and matches(rule["target_matchers"], target)
            and all(source.get(k, "") == target.get(k, "") for k in rule.get("equal", [])))


def _inhibited(source: dict[str, str], target: dict[str, str]) -> bool:
    rules = monitoring.alertmanager_config(Receivers())["inhibit_rules"]
    return any(_inhibits(r, source, target) for r in rules)


def test_a_critical_silences_warnings_of_the_same_alert_and_model_only() -> None:
    crit = {"alertname": "LlmTtftHigh", "severity": "critical", "ray_io_cluster": "llm",
            "model_name": "m1"}
    assert _inhibited(crit, {**crit, "severity": "warning"})
    queue = {"alertname": "LlmQueueBuildUp", "severity": "warning", "ray_io_cluster": "llm",
             "model_name": "m1"}
    assert _inhibited(crit, queue)  # same model, symptom
    assert not _inhibited(crit, {**queue, "model_name": "m2"})  # another model still alerts
    assert not _inhibited({**crit, "severity": "warning"}, crit)  # never the other way


# --------------------------------------------------------------------- monitors and rules
def test_monitors_validate_against_the_crds() -> None:
    for obj in monitoring.monitors():
        assert validate_custom_resource(obj) == [], obj["metadata"]["name"]


def test_ray_pod_monitor_selects_head_and_workers_on_the_metrics_port() -> None:
    spec = monitoring.ray_pod_monitor()["spec"]
    assert spec["selector"]["matchLabels"] == {"ray.io/is-ray-node": "yes"}
    [expr] = spec["selector"]["matchExpressions"]
    assert expr["key"] == "ray.io/node-type" and set(expr["values"]) == {"head", "worker"}
    assert [e["port"] for e in spec["podMetricsEndpoints"]] == ["metrics"]


def test_dcgm_pod_monitor_honours_the_exporters_pod_labels() -> None:
    spec = monitoring.dcgm_pod_monitor()["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [gpu.NAMESPACE]}
    assert spec["selector"]["matchLabels"] == gpu.dcgm_exporter_values()["podLabels"]
    [endpoint] = spec["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is True and endpoint["port"] == gpu.DCGM_PORT_NAME


def test_prometheus_rule_carries_the_groups_and_validates() -> None:
    groups = [{"name": "g", "rules": [{"alert": "A", "expr": "vector(1)", "for": "5m",
                                       "labels": {"severity": "warning"},
                                       "annotations": {"summary": "s"}}]}]
    rule = monitoring.prometheus_rule(groups)
    assert rule["spec"]["groups"] == groups
    assert validate_custom_resource(rule) == []


# ------------------------------------------------------------------------------ dashboards
def test_one_labelled_config_map_per_dashboard_in_the_folder() -> None:
    dashboards = {"llm-overview.json": {"title": "LLM overview", "panels": []},
                  "GPU Fleet.json": {"title": "GPU fleet", "panels": [{"id": 1}]}}
    maps = monitoring.dashboard_config_maps(dashboards)
    assert len(maps) == len(dashboards)
    loaded = {}
    for cm in maps:
        meta = cm["metadata"]
        assert meta["labels"] == {monitoring.DASHBOARD_LABEL: monitoring.DASHBOARD_LABEL_VALUE}
        assert meta["annotations"] == {monitoring.FOLDER_ANNOTATION: monitoring.DASHBOARD_FOLDER}
        [(key, text)] = cm["data"].items()
        loaded[key] = json.loads(text)
    assert loaded == dashboards
    assert sorted(cm["metadata"]["name"] for cm in maps) == [
        "dashboard-gpu-fleet", "dashboard-llm-overview"]


def test_two_dashboards_that_would_share_a_config_map_are_an_error() -> None:
    with pytest.raises(ValueError, match="dashboard-a-b"):
        monitoring.dashboard_config_maps({"a b.json": {}, "a-b.json": {}})


# ---------------------------------------------------------------------------------- config
def test_bad_monitoring_config_names_the_key() -> None:
    base = {"environment": "dev", "serving": {"models": [{"id": "m", "source": "s"}]}}
    with pytest.raises(ConfigError) as err:
        validate({**base, "monitoring": {"prometheusRetention": "15 days",
                                         "prometheusVolumeGib": 5}})
    text = str(err.value)
    assert "llm-platform:monitoring.prometheusRetention" in text
    assert "llm-platform:monitoring.prometheusVolumeGib" in text and "10" in text


def test_webhook_url_must_be_a_secret() -> None:
    base = {"environment": "dev", "serving": {"models": [{"id": "m", "source": "s"}]}}
    with pytest.raises(ConfigError, match="alertmanagerWebhookUrl: must be a Pulumi secret"):
        validate({**base, "alertmanagerWebhookUrl": "https://example.invalid/hook"})


# ------------------------------------------------------- the config, read by Alertmanager's amtool
AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="needs `amtool` (Debian package prometheus-alertmanager; `make test` installs it)",
)


def _amtool_config(receivers: Receivers, tmp_path: Path) -> Path:
    """The config as a file amtool 0.25 (Debian 12) reads. It predates webhook `url_file`
    (Alertmanager v0.34 in the chart has it: docs/configuration.md `<webhook_config>`), so that
    one field becomes a placeholder `url`; everything else is checked as generated."""
    cfg = monitoring.alertmanager_config(receivers)
    for r in cfg["receivers"]:
        for hook in r.get("webhook_configs", []):
            assert hook.pop("url_file").startswith(monitoring.SECRETS_MOUNT)
            hook["url"] = "http://pager.invalid/"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _amtool(*args: str) -> str:
    done = subprocess.run([str(AMTOOL), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_amtool
@pytest.mark.parametrize("receivers", ALL_RECEIVERS)
def test_amtool_accepts_the_config(receivers: Receivers, tmp_path: Path) -> None:
    _amtool("check-config", str(_amtool_config(receivers, tmp_path)))


BOTH = Receivers(slack=True, webhook=True)
CRITICAL = {"alertname": "LLMModelNoHealthyReplica", "severity": "critical"}
WARNING = {"alertname": "LLMQueueBuildUp", "severity": "warning"}


@needs_amtool
@pytest.mark.parametrize(("receivers", "labels_", "want"), [
    (BOTH, CRITICAL, {"pager", "slack"}),
    (BOTH, WARNING, {"slack"}),
    (BOTH, {"alertname": "Watchdog", "severity": "none"}, {"null"}),
    (BOTH, {"alertname": "KubeCPUOvercommit", "severity": "info"}, {"null"}),
    (Receivers(slack=True), CRITICAL, {"slack"}),
    (Receivers(webhook=True), CRITICAL, {"pager"}),
    (Receivers(webhook=True), WARNING, {"null"}),
    (Receivers(), CRITICAL, {"null"}),
])
def test_amtool_routes_alerts_to_the_right_receivers(
    receivers: Receivers, labels_: dict[str, str], want: set[str], tmp_path: Path
) -> None:
    config = _amtool_config(receivers, tmp_path)
    out = _amtool("config", "routes", "test", f"--config.file={config}",
                  *[f"{k}={v}" for k, v in labels_.items()])
    assert set(out.strip().split(",")) == want
