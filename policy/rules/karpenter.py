"""Karpenter: GPU NodePools bounded (GPUs and CPUs, and in USD/h), EC2NodeClasses hardened."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from infra.capacity import cost
from infra.capacity.catalog import UnknownRegionError
from policy.core import Context, Policy, Resource, get, k8s_kind

GPU_TAINT_KEY = "nvidia.com/gpu"
# Families with NVIDIA GPUs are g* and p* (g6e, g5, p4d, p5...); the catalog names ours.
_GPU_FAMILY = re.compile(r"^(g|p)[0-9]")
_RESTRICTING = {"node.kubernetes.io/instance-type", "karpenter.k8s.aws/instance-family",
                "karpenter.k8s.aws/instance-category", "karpenter.k8s.aws/instance-gpu-count"}


def is_nodepool(r: Resource) -> bool:
    return k8s_kind(r) == "NodePool" and str(r.props.get("apiVersion", "")).startswith(
        "karpenter.sh/")


def may_launch_gpus(r: Resource) -> bool:
    """True unless the requirements provably exclude GPU instances: an unrestricted NodePool
    may launch any instance type, GPU ones included."""
    spec = get(r.props, "spec.template.spec") or {}
    if any(t.get("key") == GPU_TAINT_KEY for t in spec.get("taints") or []):
        return True
    restricted = False
    for req in spec.get("requirements") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        if key not in _RESTRICTING:
            continue
        if key == "karpenter.k8s.aws/instance-gpu-count":
            if op == "DoesNotExist" or (op == "In" and set(values) <= {"0"}):
                restricted = True
                continue
            return True
        if op != "In":
            continue
        restricted = True
        families = {str(v).split(".")[0] for v in values}
        if key == "karpenter.k8s.aws/instance-category":
            families = {f"{v}0" for v in values}
        if any(_GPU_FAMILY.match(f) for f in families):
            return True
    return not restricted


def gpu_nodepool_limits(r: Resource, ctx: Context) -> Iterable[str]:
    if not is_nodepool(r) or not may_launch_gpus(r):
        return
    limits: Mapping[str, Any] = get(r.props, "spec.limits") or {}
    for key, what in (("nvidia.com/gpu", "gpus"), ("cpu", "cpu")):
        q = cost.quantity(limits.get(key)) if key in limits else None
        if q is None or q <= 0:
            yield (f"spec.limits has no positive {key!r}: set llm-platform:gpuNodePools[]."
                   f"limits.{what} for this pool (a GPU NodePool without it can grow until "
                   f"the account quota)")


def nodeclass_hardened(r: Resource, ctx: Context) -> Iterable[str]:
    if k8s_kind(r) != "EC2NodeClass":
        return
    spec = r.props.get("spec") or {}
    tokens = get(spec, "metadataOptions.httpTokens")
    if tokens != "required":
        yield (f"spec.metadataOptions.httpTokens is {tokens!r}: set it to 'required' "
               f"(IMDSv2 only; infra/foundation/karpenter.py _hardened_metadata)")
    mappings = spec.get("blockDeviceMappings") or []
    if not mappings:
        yield ("no spec.blockDeviceMappings: declare the root volume with ebs.encrypted: true "
               "(otherwise encryption depends on the account default)")
    for i, bdm in enumerate(mappings):
        if get(bdm, "ebs.encrypted") is not True:
            yield f"spec.blockDeviceMappings[{i}].ebs.encrypted is not true: set it to true"


def nodeclass_hop_limit(r: Resource, ctx: Context) -> Iterable[str]:
    if k8s_kind(r) != "EC2NodeClass":
        return
    hops = get(r.props, "spec.metadataOptions.httpPutResponseHopLimit")
    if hops != 1:
        yield (f"httpPutResponseHopLimit is {hops!r}: 1 keeps pods off the node's IMDS "
               f"credentials (they use Pod Identity)")


def spot_gpus_in_prod(r: Resource, ctx: Context) -> Iterable[str]:
    if ctx.environment != "prod" or not is_nodepool(r) or not cost.nodepool_instance_types(
            dict(r.props)):
        return
    for req in get(r.props, "spec.template.spec.requirements") or []:
        if req.get("key") == "karpenter.sh/capacity-type" and "spot" in (req.get("values") or []):
            yield ("spot GPUs in prod: a reclaimed node drops its in-flight requests; use "
                   "capacityTypes: [on-demand] unless the model tolerates it")


def cost_ceiling(resources: list[Resource], ctx: Context) -> Iterable[tuple[str, str]]:
    pools = [r for r in resources if is_nodepool(r)]
    if not pools:
        return
    if ctx.region is None or ctx.cost_ceiling_per_hour is None:
        yield ("cannot check the GPU cost ceiling: the stack has no aws:region or no "
               "llm-platform:costCeilingPerHour (nor an environment with a default)",
               pools[0].urn)
        return
    costs = []
    for r in pools:
        try:
            c = cost.nodepool_worst_case(dict(r.props), ctx.region)
        except UnknownRegionError as exc:
            yield (f"aws:region: {exc.args[0]}", r.urn)
            return
        except ValueError as exc:
            yield (f"{exc}: bound it in llm-platform:gpuNodePools[].limits", r.urn)
            continue
        if c is not None:
            costs.append(c)
    costs.sort(key=lambda c: c.pool)
    total = sum(c.usd_per_hour for c in costs)
    if total > ctx.cost_ceiling_per_hour:
        yield (f"the GPU NodePools can cost {total:.2f} USD/h at their limits in {ctx.region} "
               f"({'; '.join(c.describe() for c in costs)}), above costCeilingPerHour "
               f"{ctx.cost_ceiling_per_hour:g} USD/h: lower llm-platform:gpuNodePools[].limits "
               f"or raise llm-platform:costCeilingPerHour in a reviewed change", pools[0].urn)


POLICIES = [
    Policy("gpu-nodepool-limits",
           "Every NodePool that may launch GPU instances has positive nvidia.com/gpu and cpu "
           "limits.", mandatory=True, check=gpu_nodepool_limits),
    Policy("ec2nodeclass-imdsv2-encrypted",
           "EC2NodeClasses require IMDSv2 and encrypt every EBS volume.",
           mandatory=True, check=nodeclass_hardened),
    Policy("gpu-cost-ceiling",
           "The GPU NodePools' worst-case on-demand cost at their limits stays within "
           "costCeilingPerHour.", mandatory=True, stack_check=cost_ceiling),
    Policy("ec2nodeclass-imds-hop-limit", "EC2NodeClasses keep the IMDS hop limit at 1.",
           mandatory=False, check=nodeclass_hop_limit),
    Policy("gpu-nodepool-on-demand-in-prod", "Prod GPU NodePools use on-demand capacity.",
           mandatory=False, check=spot_gpus_in_prod),
]
