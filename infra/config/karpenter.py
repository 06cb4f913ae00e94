"""`karpenter`: Karpenter's node classes and the Ray head pool
(infra/foundation/karpenter.py). The GPU NodePools are `gpuNodePools`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from serve_app.config import StrictModel

GpuAmiFamily = Literal["al2023-nvidia", "bottlerocket-nvidia"]


class KarpenterConfig(StrictModel):
    gpu_ami_family: GpuAmiFamily = Field(
        "al2023-nvidia", description="GPU AMI family (Bottlerocket ships its own device plugin)."
    )
    gpu_ami_version: str | None = Field(
        None,
        pattern=r"^v[0-9]{8}$|^v[0-9]+\.[0-9]+\.[0-9]+$",
        description="Pinned AMI alias version (required in prod); unset means latest.",
    )
    root_volume_gib: int = Field(
        200, ge=100, le=16384, description="GiB of the GPU nodes' image volume (encrypted gp3)."
    )
    volume_iops: int = Field(
        6000, ge=3000, le=16000, description="gp3 IOPS of the GPU nodes' image volume."
    )
    volume_throughput: int = Field(
        500, ge=125, le=1000, description="gp3 throughput (MiB/s) of the GPU nodes' image volume."
    )
    image_cache_snapshot_id: str | None = Field(
        None, pattern=r"^snap-[0-9a-f]{8,17}$",
        description="EBS snapshot with the serving images pre-pulled, to cut cold starts.",
    )
    head_pool_cpu_limit: int = Field(64, gt=0, description="vCPU limit of the Ray head pool.")
    head_pool_instance_families: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]] = Field(
        ["m7i", "m6i"], min_length=1, max_length=10,
        description="EC2 instance families of the on-demand CPU pool for Ray head pods.",
    )

    @model_validator(mode="after")
    def _ami_version_matches_family(self) -> KarpenterConfig:
        # AL2023 aliases are dated (v20251108); Bottlerocket ones are semver (v1.50.0).
        v = self.gpu_ami_version
        if v is None:
            return self
        dated = len(v) == 9 and v[1:].isdigit()
        if self.gpu_ami_family == "al2023-nvidia" and not dated:
            raise ValueError(f"gpuAmiVersion {v} is not an AL2023 release (vYYYYMMDD)")
        if self.gpu_ami_family == "bottlerocket-nvidia" and dated:
            raise ValueError(f"gpuAmiVersion {v} is not a Bottlerocket release (vX.Y.Z)")
        return self
