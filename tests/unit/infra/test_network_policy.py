"""NetworkPolicies of the Ray pods: which peer may reach which Ray port."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from infra.serving.exposure import INTERNAL_RAY_PORTS, SERVE_PORT
from infra.serving.network_policy import NS_LABEL, POD_IDENTITY_AGENT, RAY_POD, ray_network_policies
from tests.support.k8s_schema import core_object_errors

VPC = [IPv4Network("10.0.0.0/16")]


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, Any]]:
    objs = ray_network_policies(namespace="serving", operator_namespace="kuberay-system",
                                prometheus_namespace="monitoring", vpc_cidrs=VPC)
    return {o["metadata"]["name"]: o for o in objs}


def ingress_rules(policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for p in policies.values() for rule in p["spec"].get("ingress", [])]


def ports(rule: dict[str, Any]) -> set[int] | None:
    """The TCP ports a rule opens; None = every port."""
    return None if "ports" not in rule else {p["port"] for p in rule["ports"]}


def test_every_policy_selects_the_ray_pods_and_is_valid(policies) -> None:
    for obj in policies.values():
        assert obj["spec"]["podSelector"] == {"matchLabels": RAY_POD}
        assert obj["metadata"]["namespace"] == "serving"
        assert core_object_errors(obj, "1.34") == []


def test_only_ray_pods_reach_every_port(policies) -> None:
    for rule in ingress_rules(policies):
        if ports(rule) is None:
            assert rule["from"] == [{"podSelector": {"matchLabels": RAY_POD}}]


def test_dashboard_only_from_the_operator_metrics_only_from_prometheus(policies) -> None:
    dashboard, metrics = INTERNAL_RAY_PORTS["dashboard"], INTERNAL_RAY_PORTS["metrics"]
    for rule in ingress_rules(policies):
        opened = ports(rule)
        if opened is None:
            continue
        peers = rule["from"]
        if dashboard in opened:
            assert opened == {dashboard}
            assert peers == [{
                "namespaceSelector": {"matchLabels": {NS_LABEL: "kuberay-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
            }]
        if metrics in opened:
            assert opened == {metrics}
            assert peers == [{"namespaceSelector": {"matchLabels": {NS_LABEL: "monitoring"}}}]
        # GCS and the client port are never opened beyond the Ray pods.
        assert not opened & {INTERNAL_RAY_PORTS["gcs"], INTERNAL_RAY_PORTS["client"]}
        for peer in peers:
            if "ipBlock" in peer:  # address ranges reach the Serve port only, and only the VPC's
                assert opened == {SERVE_PORT}
                assert IPv4Network(peer["ipBlock"]["cidr"]) in VPC


def test_egress_dns_https_pod_identity_and_redis(policies) -> None:
    egress = policies["ray-egress"]["spec"]["egress"]
    dns = egress[0]
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    opened = {(r["to"][0].get("ipBlock", {}).get("cidr"), p["port"])
              for r in egress[1:] for p in r["ports"]}
    assert opened == {("0.0.0.0/0", 443), (POD_IDENTITY_AGENT, 80), ("10.0.0.0/16", 6379)}
    assert policies["ray-internal"]["spec"]["egress"] == [
        {"to": [{"podSelector": {"matchLabels": RAY_POD}}]}]
