"""Every policy of the pack, in one list (names unique), and the context of a stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infra.capacity.cost import DEFAULT_CEILING_USD_PER_HOUR
from policy.core import Context, Policy
from policy.rules import (
    aws_eks,
    aws_elasticache,
    aws_kms,
    aws_network,
    aws_rds,
    aws_s3,
    exposure,
    karpenter,
    rayservice,
    secrets,
    workloads,
)

PACK_NAME = "llm-platform"
PROJECT = "llm-platform"

POLICIES: list[Policy] = [
    *aws_network.POLICIES,
    *aws_eks.POLICIES,
    *aws_kms.POLICIES,
    *aws_s3.POLICIES,
    *aws_elasticache.POLICIES,
    *aws_rds.POLICIES,
    *karpenter.POLICIES,
    *rayservice.POLICIES,
    *workloads.POLICIES,
    *secrets.POLICIES,
    *exposure.POLICIES,
]


def context(stack: str, config: Mapping[str, Any]) -> Context:
    """The stack's Context from its config as Pulumi hands it over (`ns:key` -> value). The cost
    ceiling is the stack's `costCeilingPerHour`, else its environment's default
    (infra/capacity/cost.py)."""
    env = config.get(f"{PROJECT}:environment")
    raw = config.get(f"{PROJECT}:costCeilingPerHour")
    try:
        ceiling = float(raw) if raw is not None else DEFAULT_CEILING_USD_PER_HOUR.get(str(env))
    except (TypeError, ValueError):
        ceiling = None
    region = config.get("aws:region")
    return Context(stack=stack, environment=str(env) if env else None,
                   region=str(region) if region else None, cost_ceiling_per_hour=ceiling)


EXCEPTIONS = Path(__file__).resolve().parent / "exceptions"
LEVELS = {"mandatory", "advisory", "disabled"}


def exceptions(stack: str, folder: Path = EXCEPTIONS) -> dict[str, str]:
    """The stack's reviewed exceptions (policy name -> enforcement level), from the same policy
    pack config file CrossGuard is given (`policy/exceptions/<stack>.json`; none if absent)."""
    path = folder / f"{stack}.json"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for name, value in json.loads(path.read_text()).items():
        level = value.get("enforcementLevel") if isinstance(value, dict) else value
        out[str(name)] = str(level)
    return out


def _unique() -> None:
    names = [p.name for p in POLICIES]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"policy names must be unique: {sorted(dupes)}")


_unique()
