"""Node labels, taints and tolerations shared by the node pools and the workloads placed on them.

One module, imported by both sides, so that a NodePool and the pods that select it cannot drift
apart. Plain data, no Pulumi import: the RayService and observability code import it freely.
"""

from __future__ import annotations

from typing import Any

PREFIX = "llm-platform.io"

# Which kind of node this is: "system" (managed node group), "gpu" (Karpenter GPU pools) or
# "ray-head" (Karpenter CPU pool for Ray head pods).
NODE_CLASS_LABEL = f"{PREFIX}/node-class"
NODE_CLASS_SYSTEM = "system"
NODE_CLASS_GPU = "gpu"
NODE_CLASS_RAY_HEAD = "ray-head"

# On GPU nodes: the pool name from `gpuNodePools[].name` and the catalog's GPU model (e.g. L40S).
GPU_POOL_LABEL = f"{PREFIX}/gpu-pool"
GPU_MODEL_LABEL = f"{PREFIX}/gpu-model"

# The NVIDIA device plugin chart's default node affinity selects nodes with this label (or NFD
# labels, which we do not install); without it the plugin never starts and GPU pods stay Pending.
NVIDIA_GPU_PRESENT_LABEL = "nvidia.com/gpu.present"

# Pods with this label are scraped by the observability stack (value: what is scraped).
SCRAPE_LABEL = f"{PREFIX}/scrape"

GPU_TAINT: dict[str, str] = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
# Only critical add-ons and operators run on the system node group.
SYSTEM_TAINT: dict[str, str] = {
    "key": "CriticalAddonsOnly",
    "value": "true",
    "effect": "NoSchedule",
}

GPU_TOLERATION: dict[str, str] = {
    "key": GPU_TAINT["key"],
    "operator": "Exists",
    "effect": GPU_TAINT["effect"],
}
SYSTEM_TOLERATION: dict[str, str] = {
    "key": SYSTEM_TAINT["key"],
    "operator": "Exists",
    "effect": SYSTEM_TAINT["effect"],
}


def system_scheduling() -> dict[str, Any]:
    """nodeSelector + tolerations for an operator that belongs on the system node group."""
    return {
        "nodeSelector": {NODE_CLASS_LABEL: NODE_CLASS_SYSTEM},
        "tolerations": [dict(SYSTEM_TOLERATION)],
    }


def gpu_worker_scheduling(pool: str) -> dict[str, Any]:
    """nodeSelector + tolerations for a Ray GPU worker group that runs on GPU pool `pool`."""
    return {
        "nodeSelector": {NODE_CLASS_LABEL: NODE_CLASS_GPU, GPU_POOL_LABEL: pool},
        "tolerations": [dict(GPU_TOLERATION)],
    }


def ray_head_scheduling() -> dict[str, Any]:
    """nodeSelector for Ray head pods (the CPU pool has no taint)."""
    return {"nodeSelector": {NODE_CLASS_LABEL: NODE_CLASS_RAY_HEAD}, "tolerations": []}
