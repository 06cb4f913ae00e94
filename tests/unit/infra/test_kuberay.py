"""The KubeRay operator's Helm values: every key exists in the pinned chart, gates explicit."""

from __future__ import annotations

from infra import labels, versions
from infra.platform.kuberay import FEATURE_GATES, METRICS_PORT, operator_values
from tests.support.upstream import load_yaml, upstream_file

CHART_VALUES = upstream_file("kuberay-operator", versions.KUBERAY_VERSION, "values.yaml")


def test_every_chart_feature_gate_is_set_explicitly() -> None:
    chart_gates = {g["name"] for g in load_yaml(CHART_VALUES)["featureGates"]}
    ours = {g["name"]: g["enabled"] for g in operator_values()["featureGates"]}
    assert set(ours) == chart_gates == set(FEATURE_GATES)
    # The incremental upgrade needs a Gateway API controller, which the platform lacks.
    assert ours["RayServiceIncrementalUpgrade"] is False


def test_operator_on_system_nodes_pinned_with_metrics_service() -> None:
    v = operator_values()
    assert v["nodeSelector"] == labels.system_scheduling()["nodeSelector"]
    assert labels.SYSTEM_TOLERATION in v["tolerations"]
    assert v["image"] == {"repository": "quay.io/kuberay/operator", "tag": "v1.7.0"}
    assert load_yaml(CHART_VALUES)["image"]["tag"] == v["image"]["tag"]
    assert v["metrics"] == {"enabled": True, "serviceMonitor": {"enabled": True}}
    assert v["service"] == {"type": "ClusterIP", "port": METRICS_PORT}
    assert v["resources"]["requests"] == v["resources"]["limits"]
