"""The VPC CNI evaluator on small cases whose verdict upstream states (endpoints.go)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.vpc_cni_policy import (
    Cluster,
    Flow,
    Host,
    Pod,
    Service,
    UnsupportedPolicyError,
    ip,
    verdict,
)

CLIENT = Pod("client", "a", {"app": "client"}, ip("10.0.1.1"))
DB = Pod("db", "a", {"app": "db"}, ip("10.0.1.2"))
DB_SVC = Service("db", "a", {"app": "db"}, ip("172.20.0.50"), {5432: 5432})


def egress_only(to: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "client-egress", "namespace": "a"},
            "spec": {"podSelector": {"matchLabels": {"app": "client"}},
                     "policyTypes": ["Egress"],
                     "egress": [{"to": to, "ports": [{"protocol": "TCP", "port": 5432}]}]}}


def cluster(*policies: dict[str, Any]) -> Cluster:
    return Cluster({"a": {"kubernetes.io/metadata.name": "a"}}, [CLIENT, DB], list(policies))


def test_an_ip_block_of_the_pods_does_not_cover_the_service_cluster_ip() -> None:
    c = cluster(egress_only([{"ipBlock": {"cidr": "10.0.0.0/16"}}]))
    assert verdict(c, Flow("pod ip", CLIENT, DB, 5432, True))[0]
    ok, why = verdict(c, Flow("service", CLIENT, DB_SVC, 5432, True))
    assert not ok and "egress" in why


def test_a_pod_selector_matching_the_service_selector_covers_its_cluster_ip() -> None:
    c = cluster(egress_only([{"podSelector": {"matchLabels": {"app": "db"}}}]))
    assert verdict(c, Flow("service", CLIENT, DB_SVC, 5432, True))[0]
    assert not verdict(c, Flow("other port", CLIENT, DB_SVC, 6379, True))[0]


def test_a_service_without_selector_needs_an_ip_block_covering_its_cluster_ip() -> None:
    api = Service("kubernetes", "default", None, ip("172.20.0.1"), {5432: 5432},
                  (Host("cp", ip("10.0.9.9")),))
    assert not verdict(cluster(egress_only([{"podSelector": {"matchLabels": {"app": "db"}}}])),
                       Flow("api", CLIENT, api, 5432, True))[0]
    assert verdict(cluster(egress_only([{"ipBlock": {"cidr": "0.0.0.0/0"}}])),
                   Flow("api", CLIENT, api, 5432, True))[0]


def test_ingress_from_the_node_always_passes_and_other_sources_need_a_rule() -> None:
    deny_in = {"metadata": {"name": "db-in", "namespace": "a"},
               "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                        "ingress": []}}
    c = cluster(deny_in)
    assert verdict(c, Flow("kubelet", Host("node", ip("10.0.0.5"), is_node=True), DB, 5432,
                           True))[0]
    assert not verdict(c, Flow("client", CLIENT, DB_SVC, 5432, True))[0]
    assert not verdict(c, Flow("vpc", Host("vm", ip("10.0.0.6")), DB, 5432, True))[0]


def test_match_expressions_are_refused_rather_than_misjudged() -> None:
    c = cluster(egress_only([{"podSelector": {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["db"]}]}}]))
    with pytest.raises(UnsupportedPolicyError):
        verdict(c, Flow("service", CLIENT, DB_SVC, 5432, True))
