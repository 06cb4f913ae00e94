"""Where the pod specs and containers of a Kubernetes object are, for the workload policies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policy.core import Resource, get, k8s_kind

_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# KubeRay: where each kind keeps its RayCluster spec.
_RAY_CLUSTER_SPEC = {"RayCluster": "spec", "RayService": "spec.rayClusterConfig",
                     "RayJob": "spec.rayClusterSpec"}


def ray_cluster_spec(resource: Resource) -> Mapping[str, Any] | None:
    path = _RAY_CLUSTER_SPEC.get(k8s_kind(resource) or "")
    spec = get(resource.props, path) if path else None
    return spec if isinstance(spec, Mapping) else None


def pod_specs(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, pod spec) of every pod template the object declares."""
    kind = k8s_kind(resource)
    props = resource.props
    found: list[tuple[str, Any]] = []
    if kind == "Pod":
        found.append(("spec", get(props, "spec")))
    elif kind in _TEMPLATE:
        found.append(("spec.template.spec", get(props, "spec.template.spec")))
    elif kind == "CronJob":
        found.append(("spec.jobTemplate.spec.template.spec",
                      get(props, "spec.jobTemplate.spec.template.spec")))
    elif kind in _RAY_CLUSTER_SPEC:
        base = _RAY_CLUSTER_SPEC[kind]
        cluster = ray_cluster_spec(resource) or {}
        found.append((f"{base}.headGroupSpec.template.spec",
                      get(cluster, "headGroupSpec.template.spec")))
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            found.append((f"{base}.workerGroupSpecs[{i}].template.spec",
                          get(group, "template.spec")))
    for where, spec in found:
        if isinstance(spec, Mapping):
            yield where, spec


def containers(resource: Resource) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, container) of every container and init container, named for messages."""
    for where, spec in pod_specs(resource):
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                if isinstance(c, Mapping):
                    yield f"{where}.{key}[name={c.get('name', '?')}]", c
