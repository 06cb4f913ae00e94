"""`gpuNodePools`: the GPU NodePools Karpenter launches nodes into
(infra/foundation/karpenter.py), checked against the instance catalog.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from infra.capacity.catalog import CATALOG
from infra.config.base import DnsLabel
from serve_app.config import StrictModel

CapacityType = Literal["spot", "on-demand"]
Duration = Annotated[str, Field(pattern=r"^([0-9]+(s|m|h))+$|^Never$")]


class GpuPoolLimits(StrictModel):
    gpus: int = Field(gt=0, description="Most GPUs this pool may run.")
    cpu: int | None = Field(
        None, gt=0,
        description="Most vCPUs this pool may run. Default: gpus x the most vCPUs per GPU among "
        "the pool's sizes (never binds before `gpus`; bounds a pool that could launch a "
        "GPU-less instance).",
    )
    memory_gib: int | None = Field(None, gt=0, description="Most memory (GiB) this pool may run.")


class GpuNodePoolConfig(StrictModel):
    name: DnsLabel = Field(description="NodePool name (a DNS label); pods select it by name.")
    family: str = Field(
        description="GPU instance family from infra/capacity/catalog.py (g6e, g5, p4d)."
    )
    sizes: list[str] | None = Field(
        None, min_length=1,
        description="Instance sizes of the family (e.g. xlarge, 12xlarge); default: every size.",
    )
    capacity_types: list[CapacityType] = Field(
        ["on-demand"], min_length=1, description="Karpenter capacity types allowed."
    )
    limits: GpuPoolLimits = Field(description="Pool limits; `gpus` is required.")
    weight: int = Field(50, ge=1, le=100, description="Higher is tried first.")
    consolidate_after: Duration = Field(
        "30m", description="How long a node must be empty before Karpenter removes it."
    )
    # Karpenter's expiry is forceful (it ignores budgets): a default of Never keeps a busy GPU
    # node from being drained mid-request; node updates roll through drift instead.
    expire_after: Duration = Field("Never", description="Node lifetime before replacement.")
    disruption_budget: str = Field(
        "10%", pattern=r"^([0-9]+|[0-9]{1,3}%)$",
        description="Most nodes (count or %) Karpenter may disrupt at once.",
    )

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in CATALOG:
            raise ValueError(f"unknown GPU family {v!r}; allowed: {', '.join(sorted(CATALOG))}")
        return v

    @model_validator(mode="after")
    def _known_sizes(self) -> GpuNodePoolConfig:
        known = CATALOG[self.family]
        bad = [s for s in self.sizes or [] if s not in known]
        if bad:
            raise ValueError(
                f"sizes {bad} not in the {self.family} catalog; allowed: {', '.join(known)}"
            )
        return self


# Lists are replaced, not merged: a stack file that sets gpuNodePools sets all of them.
PROFILES = {
    "dev": [
        {"name": "g6e", "family": "g6e", "sizes": ["xlarge", "2xlarge", "4xlarge"],
         "capacityTypes": ["spot", "on-demand"], "limits": {"gpus": 4}, "weight": 100,
         "consolidateAfter": "10m"},
        {"name": "g5", "family": "g5", "sizes": ["xlarge", "2xlarge", "4xlarge"],
         "capacityTypes": ["spot", "on-demand"], "limits": {"gpus": 4}, "weight": 50,
         "consolidateAfter": "10m"},
    ],
    "staging": [
        {"name": "g6e", "family": "g6e", "capacityTypes": ["spot", "on-demand"],
         "limits": {"gpus": 8}, "weight": 100},
        {"name": "g5", "family": "g5", "capacityTypes": ["spot", "on-demand"],
         "limits": {"gpus": 8}, "weight": 50},
    ],
    "prod": [
        {"name": "g6e", "family": "g6e", "limits": {"gpus": 32}, "weight": 100},
        {"name": "g5", "family": "g5", "limits": {"gpus": 16}, "weight": 50},
        # 24: a 70B model at 2 x 8 GPUs plus a NewCluster upgrade's first replica (8).
        {"name": "p4d", "family": "p4d", "limits": {"gpus": 24}, "weight": 10,
         "consolidateAfter": "1h"},
    ],
}
