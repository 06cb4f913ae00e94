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
