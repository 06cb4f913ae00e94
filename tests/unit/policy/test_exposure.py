"""Exposure rule: Ray dashboard, GCS, client and metrics ports stay inside the cluster."""

from __future__ import annotations

import pytest

from policy.rules import exposure
from tests.unit.policy.builders import PROD, k8s, rayservice


def service(type_: str, port: int | str, name: str = "p") -> object:
    return k8s("Service", "v1", {"type": type_, "ports": [{"name": name, "port": 80,
                                                            "targetPort": port}]})


@pytest.mark.parametrize("port", [8265, 6379, 10001, 8080, "dashboard"])
def test_load_balancer_to_a_ray_port_is_refused(port: int | str) -> None:
    (msg,) = exposure.ray_ports_internal(service("LoadBalancer", port), PROD)
    assert "ClusterIP" in msg and "8000" in msg


def test_cluster_ip_and_serve_port_pass() -> None:
    assert list(exposure.ray_ports_internal(service("ClusterIP", 8265), PROD)) == []
    assert list(exposure.ray_ports_internal(service("LoadBalancer", 8000, "serve"), PROD)) == []


def test_ingress_to_the_dashboard_is_refused() -> None:
    ing = k8s("Ingress", "networking.k8s.io/v1", {"rules": [{"http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "llm-head-svc",
                                              "port": {"number": 8265}}}}]}}]})
    (msg,) = exposure.ray_ports_internal(ing, PROD)
    assert "8265 (dashboard)" in msg


def test_rayservice_head_service_type_is_refused() -> None:
    rs = rayservice()
    rs.props["spec"]["rayClusterConfig"]["headGroupSpec"]["serviceType"] = "LoadBalancer"
    (msg,) = exposure.ray_ports_internal(rs, PROD)
    assert "serviceType LoadBalancer" in msg
    assert list(exposure.ray_ports_internal(rayservice(), PROD)) == []
