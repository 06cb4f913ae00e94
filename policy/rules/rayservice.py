"""RayService: explicit upgrade strategy, a head without GPUs, no deprecated fields.

Facts from KubeRay v1.7.0 (../shared/notes/rayservice.md): with `upgradeStrategy` unset the
operator still starts a second full cluster on any `rayClusterConfig` change (zero-downtime is on
by default), so leaving it implicit hides a 2x GPU cost; the two threshold fields are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.core import Context, Policy, Resource, get, k8s_kind
from policy.pods import ray_cluster_spec

STRATEGIES = {"NewCluster", "NewClusterWithIncrementalUpgrade", "None"}
DEPRECATED = ("serviceUnhealthySecondThreshold", "deploymentUnhealthySecondThreshold")
GPU = "nvidia.com/gpu"


def _rayservice(r: Resource) -> bool:
    return k8s_kind(r) == "RayService" and str(r.props.get("apiVersion", "")).startswith("ray.io/")


def upgrade_strategy(r: Resource, ctx: Context) -> Iterable[str]:
    if not _rayservice(r):
        return
    kind = get(r.props, "spec.upgradeStrategy.type")
    if kind not in STRATEGIES:
        yield (f"spec.upgradeStrategy.type is {kind!r}: set it explicitly to one of "
               f"{sorted(STRATEGIES)} (unset still starts a second full cluster, 2x the GPUs, "
               f"on every rayClusterConfig change)")


def head_without_gpu(r: Resource, ctx: Context) -> Iterable[str]:
    head = get(ray_cluster_spec(r) or {}, "headGroupSpec") if _rayservice(r) or k8s_kind(
        r) == "RayCluster" else None
    if not head:
        return
    params = head.get("rayStartParams") or {}
    if str(params.get("num-gpus", "0")) not in ("0", "0.0"):
        yield (f"headGroupSpec.rayStartParams.num-gpus is {params['num-gpus']!r}: the head must "
               f"not offer GPUs (set '0' or drop it)")
    for c in get(head, "template.spec.containers") or []:
        for section in ("requests", "limits"):
            if GPU in (get(c, f"resources.{section}") or {}):
                yield (f"head container {c.get('name')!r} asks for {GPU} in resources."
                       f"{section}: remove it (GPUs belong to the worker groups)")
    if GPU in (head.get("resources") or {}):
        yield f"headGroupSpec.resources declares {GPU}: remove it"


def no_deprecated(r: Resource, ctx: Context) -> Iterable[str]:
    if not _rayservice(r):
        return
    for field in DEPRECATED:
        if field in (r.props.get("spec") or {}):
            yield (f"spec.{field} is deprecated and ignored by KubeRay 1.7: remove it (the "
                   f"initializing timeout is the ray.io/initializing-timeout annotation)")


def head_runs_no_replicas(r: Resource, ctx: Context) -> Iterable[str]:
    head = get(ray_cluster_spec(r) or {}, "headGroupSpec") if _rayservice(r) else None
    if head and str((head.get("rayStartParams") or {}).get("num-cpus")) != "0":
        yield ("headGroupSpec.rayStartParams.num-cpus is not '0': replicas could be scheduled "
               "on the head, next to the Serve controller and GCS")


def head_off_gpu_nodes(r: Resource, ctx: Context) -> Iterable[str]:
    head = get(ray_cluster_spec(r) or {}, "headGroupSpec") if _rayservice(r) else None
    tolerations = get(head or {}, "template.spec.tolerations") or []
    if any(t.get("key") == GPU for t in tolerations):
        yield ("the head tolerates the nvidia.com/gpu taint, so it may land on (and pin) a GPU "
               "node: place it with infra.labels.ray_head_scheduling()")


POLICIES = [
    Policy("rayservice-upgrade-strategy",
           "Every RayService sets spec.upgradeStrategy.type explicitly.",
           mandatory=True, check=upgrade_strategy),
    Policy("rayservice-head-no-gpu",
           "The Ray head offers and requests no GPU.", mandatory=True, check=head_without_gpu),
    Policy("rayservice-no-deprecated-fields",
           "No deprecated RayService fields (serviceUnhealthySecondThreshold, "
           "deploymentUnhealthySecondThreshold).", mandatory=True, check=no_deprecated),
    Policy("rayservice-head-num-cpus-zero", "The Ray head runs no Serve replicas (num-cpus 0).",
           mandatory=False, check=head_runs_no_replicas),
    Policy("rayservice-head-off-gpu-nodes", "The Ray head does not tolerate the GPU taint.",
           mandatory=False, check=head_off_gpu_nodes),
]
