"""The KubeRay operator's Helm values: every key exists in the pinned chart, gates explicit."""

from __future__ import annotations

from infra import labels, versions
from infra.kuberay import FEATURE_GATES, METRICS_PORT, operator_values
from tests.support.helm_values import chart_defaults, unknown_keys

CHART_VALUES = f"kuberay-operator-{versions.KUBERAY_VERSION}_values.yaml"


def test_operator_values_keys_exist_in_the_chart() -> None:
    unknown = unknown_keys(operator_values(), chart_defaults(CHART_VALUES))
    # `resources` goes verbatim into the Deployment's container (templates/deployment.yaml), so
    # `requests` is valid though the chart's default shows only `limits`.
    assert unknown == ["resources.requests"]


def test_every_chart_feature_gate_is_set_explicitly() -> None:
    chart_gates = {g["name"] for g in chart_defaults(CHART_VALUES)["featureGates"]}
    ours = {g["name"]: g["enabled"] for g in operator_values()["featureGates"]}
    assert set(ours) == chart_gates == set(FEATURE_GATES)
    # The incremental upgrade needs a Gateway API controller, which the platform lacks.
    assert ours["RayServiceIncrementalUpgrade"] is False


def test_operator_on_system_nodes_pinned_with_metrics_service() -> None:
    v = operator_values()
    assert v["nodeSelector"] == labels.system_scheduling()["nodeSelector"]
    assert labels.SYSTEM_TOLERATION in v["tolerations"]
    assert v["image"] == {"repository": "quay.io/kuberay/operator", "tag": "v1.7.0"}
    assert chart_defaults(CHART_VALUES)["image"]["tag"] == v["image"]["tag"]
    assert v["metrics"] == {"enabled": True, "serviceMonitor": {"enabled": True}}
    assert v["service"] == {"type": "ClusterIP", "port": METRICS_PORT}
    assert v["resources"]["requests"] == v["resources"]["limits"]
