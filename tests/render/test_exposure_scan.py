"""The Ray dashboard (8265), GCS (6379), client (10001) and metrics (8080) ports are never
reachable from outside the cluster, in any stack: every Service, Ingress, Gateway, RayService /
RayCluster service setting and AWS load balancer of the render is scanned."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.serving.exposure import INTERNAL_RAY_PORTS
from tools.render import STACKS, Rendered

PORTS = set(INTERNAL_RAY_PORTS.values())
# KubeRay's port names for them (kuberay v1.7.0 utils/constant.go) and Ray's GCS port name.
NAMES = {"dashboard", "redis", "gcs", "gcs-server", "client", "metrics"}
EXTERNAL_SERVICE_TYPES = {"LoadBalancer", "NodePort"}


def _bad_port(port: Any) -> bool:
    return port in PORTS or (isinstance(port, str) and (port in NAMES or port in map(str, PORTS)))


def _service_problems(where: str, spec: dict[str, Any]) -> Iterator[str]:
    external = spec.get("type") in EXTERNAL_SERVICE_TYPES or spec.get("externalIPs")
    if not external:
        return
    for p in spec.get("ports", []):
        for key in ("port", "targetPort", "name"):
            if _bad_port(p.get(key)):
                yield f"{where}: {spec.get('type')} exposes {key} {p.get(key)}"


def _backends(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "defaultBackend" in spec:
        yield spec["defaultBackend"]
    for rule in spec.get("rules", []):
        for path in (rule.get("http") or {}).get("paths", []):
            yield path["backend"]


def exposure_problems(r: Rendered) -> list[str]:
    out: list[str] = []
    for obj in r.kubernetes_objects():
        kind, name = obj["kind"], obj["metadata"].get("name")
        where = f"{kind}/{name}"
        spec = obj.get("spec") or {}
        if kind == "Service":
            out += _service_problems(where, spec)
        elif kind == "Ingress":
            for backend in _backends(spec):
                svc = backend.get("service") or {}
                port = svc.get("port") or {}
                if _bad_port(port.get("number")) or _bad_port(port.get("name")):
                    out.append(f"{where}: backend port {port}")
                if str(svc.get("name", "")).endswith("-head-svc"):
                    out.append(f"{where}: backend is the Ray head Service {svc['name']}")
        elif kind == "Gateway":
            out += [f"{where}: listener port {lst['port']}" for lst in spec.get("listeners", [])
                    if _bad_port(lst.get("port"))]
        elif kind in ("RayService", "RayCluster"):
            cluster = spec.get("rayClusterConfig", spec) if kind == "RayService" else spec
            head = cluster.get("headGroupSpec") or {}
            if head.get("serviceType") in EXTERNAL_SERVICE_TYPES:
                out.append(f"{where}: head Service type {head['serviceType']}")
            head_svc = (head.get("headService") or {}).get("spec") or {}
            out += _service_problems(f"{where} headService", head_svc)
            serve_svc = (spec.get("serveService") or {}).get("spec") or {}
            out += _service_problems(f"{where} serveService", serve_svc)
    for res in r.resources:
        if res.type.startswith(("aws:lb/", "aws:alb/", "aws:elb/")):
            for key in ("port", "instancePort", "lbPort"):
                if _bad_port(res.inputs.get(key)):
                    out.append(f"{res.type} {res.name}: {key} {res.inputs[key]}")
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_internal_ray_ports_are_never_exposed(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    assert r.kubernetes_objects()
    assert exposure_problems(r) == []


def test_the_scan_finds_an_exposed_dashboard(rendered: Callable[[str], Rendered]) -> None:
    r = rendered("dev")
    bad = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dash"},
         "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8265}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
         "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
             "service": {"name": "x-head-svc", "port": {"name": "metrics"}}}}]}}]}},
        {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "rs"},
         "spec": {"rayClusterConfig": {"headGroupSpec": {"serviceType": "NodePort"}}}},
    ]
    fake = Rendered(r.stack, [])
    fake.kubernetes_objects = lambda: bad  # type: ignore[method-assign]
    problems = exposure_problems(fake)
    assert len(problems) == 4, problems
