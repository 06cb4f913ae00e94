"""Facts about the GPU instance types the platform supports.

One table, used by the Karpenter NodePools (instance families and sizes) and by the serving
capacity check (does a model's replica fit a node of its pool?). A family missing here is a
config error, so a typo cannot produce a NodePool that matches no instance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceType:
    family: str
    size: str
    gpu_model: str
    gpu_memory_gib: int  # per GPU
    gpus: int
    vcpu: int
    memory_gib: int
    efa: bool

    @property
    def name(self) -> str:
        return f"{self.family}.{self.size}"


def _family(
    family: str, gpu_model: str, gpu_memory_gib: int, rows: list[tuple[str, int, int, int, bool]]
) -> dict[str, InstanceType]:
    return {
        size: InstanceType(family, size, gpu_model, gpu_memory_gib, gpus, vcpu, mem, efa)
        for size, gpus, vcpu, mem, efa in rows
    }


# (size, GPUs, vCPU, memory GiB, EFA) from the EC2 instance type pages.
CATALOG: dict[str, dict[str, InstanceType]] = {
    "g6e": _family(
        "g6e",
        "L40S",
        48,
        [
            ("xlarge", 1, 4, 32, False),
            ("2xlarge", 1, 8, 64, False),
            ("4xlarge", 1, 16, 128, False),
            ("8xlarge", 1, 32, 256, True),
            ("16xlarge", 1, 64, 512, True),
            ("12xlarge", 4, 48, 384, True),
            ("24xlarge", 4, 96, 768, True),
            ("48xlarge", 8, 192, 1536, True),
        ],
    ),
    "g5": _family(
        "g5",
        "A10G",
        24,
        [
            ("xlarge", 1, 4, 16, False),
            ("2xlarge", 1, 8, 32, False),
            ("4xlarge", 1, 16, 64, False),
            ("8xlarge", 1, 32, 128, True),
            ("16xlarge", 1, 64, 256, True),
            ("12xlarge", 4, 48, 192, True),
            ("24xlarge", 4, 96, 384, True),
            ("48xlarge", 8, 192, 768, True),
        ],
    ),
    "p4d": _family("p4d", "A100", 40, [("24xlarge", 8, 96, 1152, True)]),
}


def instance_types(family: str, sizes: list[str] | None = None) -> list[InstanceType]:
    """The catalogued instance types of a family, optionally restricted to some sizes."""
    table = CATALOG[family]
    chosen = sizes if sizes else list(table)
    return [table[s] for s in chosen]


# ------------------------------------------------------------------------------ on-demand prices
# USD per hour, Linux, on-demand, shared tenancy, per region. A stack in a region missing here
# is a config error (`aws:region`), because its GPU cost ceiling could not be checked.
# Sources (both read 2026-11-29):
#  - us-east-1: Karpenter's own generated price table, aws/karpenter-provider-aws tag v1.14.1
#    (the version this stack pins), pkg/providers/pricing/zz_generated.pricing_aws.go,
#    "generated at 2026-07-06T14:20:29Z for us-east-1".
#  - us-west-2: skypilot-org/skypilot-catalog catalogs/v8/aws/vms.csv at commit
#    e385a0d348eda9cefd9806423e7725944dc249e4 (column `Price`, region us-west-2); every us-east-1
#    row of that file agrees with Karpenter's table above, and us-west-2 equals us-east-1 for
#    all 17 types here.
# Refresh: replace the numbers from the same files at a newer tag/commit and change PRICES_AS_OF.
PRICES_AS_OF = "2026-07-06"
_US_PRICES: dict[str, float] = {
    "g6e.xlarge": 1.861, "g6e.2xlarge": 2.24208, "g6e.4xlarge": 3.00424,
    "g6e.8xlarge": 4.52856, "g6e.16xlarge": 7.57719, "g6e.12xlarge": 10.49264,
    "g6e.24xlarge": 15.06559, "g6e.48xlarge": 30.13118,
    "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.8xlarge": 2.448,
    "g5.16xlarge": 4.096, "g5.12xlarge": 5.672, "g5.24xlarge": 8.144, "g5.48xlarge": 16.288,
    "p4d.24xlarge": 21.957642,
}
ON_DEMAND_USD_PER_HOUR: dict[str, dict[str, float]] = {
    "us-east-1": dict(_US_PRICES),
    "us-west-2": dict(_US_PRICES),
}


class UnknownRegionError(KeyError):
    """The region has no price table (so no cost ceiling can be checked)."""


def hourly_price(instance_type: str, region: str) -> float:
    """On-demand USD/h of one instance type in one region (spot is never dearer)."""
    table = ON_DEMAND_USD_PER_HOUR.get(region)
    if table is None:
        raise UnknownRegionError(
            f"no on-demand price table for region {region!r}; priced regions: "
            f"{', '.join(sorted(ON_DEMAND_USD_PER_HOUR))} (add one to infra/capacity/catalog.py)"
        )
    return table[instance_type]


def by_name(name: str) -> InstanceType | None:
    """The catalogued instance type called `name` (e.g. "g6e.xlarge"), or None."""
    family, _, size = name.partition(".")
    return CATALOG.get(family, {}).get(size)
