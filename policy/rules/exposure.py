"""Exposure: the Ray dashboard (8265), GCS (6379), client (10001) and metrics (8080) ports stay
inside the cluster. Only the Serve port (8000) may be published, behind the ALB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policy.core import Context, Policy, Resource, get, k8s_kind
from policy.pods import ray_cluster_spec

RAY_PORTS = {8265: "dashboard", 6379: "GCS", 10001: "Ray client", 8080: "metrics"}
RAY_PORT_NAMES = {"dashboard", "gcs", "gcs-server", "client", "metrics", "redis"}
OUTSIDE = {"LoadBalancer", "NodePort"}


def _ray_port(port: Mapping[str, Any]) -> str | None:
    for key in ("port", "targetPort", "number", "name"):
        value = port.get(key)
        if isinstance(value, int) and value in RAY_PORTS:
            return f"{value} ({RAY_PORTS[value]})"
        if isinstance(value, str) and (value in RAY_PORT_NAMES or (
                value.isdigit() and int(value) in RAY_PORTS)):
            return value
    return None


def _service_exposes(spec: Mapping[str, Any]) -> Iterable[str]:
    outside = spec.get("type") in OUTSIDE or bool(spec.get("externalIPs"))
    if not outside:
        return
    for p in spec.get("ports") or []:
        hit = _ray_port(p)
        if hit:
            yield f"a {spec.get('type') or 'externalIPs'} Service publishes Ray port {hit}"


def ray_ports_internal(r: Resource, ctx: Context) -> Iterable[str]:
    kind = k8s_kind(r)
    fix = ("keep it ClusterIP and publish only the Serve port (8000) through the ALB Ingress; "
           "reach the dashboard with kubectl port-forward")
    if kind == "Service":
        for what in _service_exposes(r.props.get("spec") or {}):
            yield f"{what}: {fix}"
    elif kind == "Ingress":
        rules = get(r.props, "spec.rules") or []
        backends = [get(r.props, "spec.defaultBackend.service.port") or {}]
        backends += [get(p, "backend.service.port") or {}
                     for rule in rules for p in get(rule, "http.paths") or []]
        for port in backends:
            hit = _ray_port(port)
            if hit:
                yield f"the Ingress routes to Ray port {hit}: {fix}"
    elif kind == "HTTPRoute":
        for rule in get(r.props, "spec.rules") or []:
            for ref in rule.get("backendRefs") or []:
                hit = _ray_port(ref)
                if hit:
                    yield f"the HTTPRoute routes to Ray port {hit}: {fix}"
    cluster = ray_cluster_spec(r)
    if cluster:
        head = cluster.get("headGroupSpec") or {}
        if head.get("serviceType") in OUTSIDE:
            yield (f"headGroupSpec.serviceType {head['serviceType']} publishes the head's "
                   f"dashboard, GCS and client ports: {fix}")
        for what in _service_exposes(get(head, "headService.spec") or {}):
            yield f"headGroupSpec.headService: {what}: {fix}"
    if kind == "RayService":
        for what in _service_exposes(get(r.props, "spec.serveService.spec") or {}):
            yield f"spec.serveService: {what}: {fix}"


POLICIES = [
    Policy("ray-ports-not-exposed",
           "No Service, Ingress, HTTPRoute or Ray head service publishes the Ray dashboard, "
           "GCS, client or metrics port outside the cluster.",
           mandatory=True, check=ray_ports_internal),
]
