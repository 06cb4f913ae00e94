"""`rayService`: the KubeRay RayService's upgrade strategy, autoscaler and
CPU pod sizes (infra/serving/rayservice.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serve_app.config import ServingConfig, StrictModel


class RayPodSize(StrictModel):
    """CPU and memory of one Ray pod; requests equal limits (Guaranteed QoS)."""

    cpu: int = Field(gt=0, le=192, description="vCPUs per pod (requests == limits).")
    memory_gib: int = Field(gt=0, le=1536, description="Memory per pod, GiB (requests == limits).")


class RayServiceConfig(StrictModel):
    """The RayService: upgrade strategy, autoscaler, head and ingress-worker sizes, and the
    numbers that size the initializing timeout. GPU worker groups follow the GPU pools."""

    # The README's "Upgrade strategies" table gives the GPU cost of each.
    upgrade_strategy: Literal["NewCluster", "None"] = Field(
        "NewCluster",
        description=(
            "NewCluster: a cluster change starts a second full cluster and switches traffic when "
            "it is ready (zero downtime; extra GPUs while both run). None: cluster changes are "
            "not applied at all, only serveConfigV2 changes (no extra GPUs)."
        ),
    )
    autoscaler_idle_timeout_seconds: int = Field(
        600, ge=30, le=86_400,
        description="Seconds a Ray worker pod may sit idle before the autoscaler (v2) removes it.",
    )
    head: RayPodSize = Field(
        default_factory=lambda: RayPodSize(cpu=2, memory_gib=8),
        description="Head pod (GCS, Serve controller, dashboard); Ray tasks never run on it.",
    )
    ingress_workers: RayPodSize = Field(
        default_factory=lambda: RayPodSize(cpu=2, memory_gib=4),
        description="Each pod of the CPU worker group that runs the gateway's ingress replicas.",
    )
    startup_overhead_seconds: int = Field(
        600, ge=60, le=7200,
        description=(
            "Seconds from a replica's request to its engine loading weights: GPU node launch, "
            "image pull (the 11.6 GB ray-llm image took ~2 min on g6e.2xlarge), engine start. "
            "Sizes the initializing timeout."
        ),
    )
    weights_load_gib_per_second: float = Field(
        0.25, gt=0, le=100,
        description=(
            "GiB/s a replica loads its weights at (download + load to GPU); sizes the "
            "initializing timeout from the largest model."
        ),
    )


def cpu_pool_problems(
    rs: RayServiceConfig, serving: ServingConfig, head_pool_cpu_limit: int
) -> list[str]:
    """The CPU pods against what holds them: the ingress replica in its worker pod, the head
    and one ingress worker in the head pool (`karpenter.headPoolCpuLimit`). Run at load after
    the capacity check, as `path: message` (no prefix)."""
    out = []
    ingress = serving.ingress
    if serving.gateway == "ingress" and ingress.cpus_per_replica > rs.ingress_workers.cpu:
        out.append(
            f"serving.ingress.cpusPerReplica: {ingress.cpus_per_replica:g} CPUs, but "
            f"an ingress worker pod has {rs.ingress_workers.cpu} (rayService.ingressWorkers.cpu)"
        )
    limit = head_pool_cpu_limit
    if rs.head.cpu + rs.ingress_workers.cpu > limit:
        out.append(
            f"karpenter.headPoolCpuLimit: {limit} vCPUs, but the Ray head ({rs.head.cpu}) and one "
            f"ingress worker ({rs.ingress_workers.cpu}) need {rs.head.cpu + rs.ingress_workers.cpu}"
        )
    return out


PROFILES = {
    "dev": {
        "upgradeStrategy": "NewCluster",
        "autoscalerIdleTimeoutSeconds": 300,
        "head": {"cpu": 2, "memoryGib": 8},
        "ingressWorkers": {"cpu": 2, "memoryGib": 4},
    },
    "staging": {
        "upgradeStrategy": "NewCluster",
        "autoscalerIdleTimeoutSeconds": 600,
        "head": {"cpu": 2, "memoryGib": 8},
        "ingressWorkers": {"cpu": 2, "memoryGib": 4},
    },
    "prod": {
        "upgradeStrategy": "NewCluster",
        "autoscalerIdleTimeoutSeconds": 1200,
        "head": {"cpu": 4, "memoryGib": 16},
        "ingressWorkers": {"cpu": 4, "memoryGib": 8},
    },
}
