"""Profile defaults: what each environment gets for keys its stack file leaves out.
Each section keeps its own `PROFILES` next to its model; this module lays them together.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infra.config import (
    cluster,
    cost_ceiling,
    exposure,
    gcs_fault_tolerance,
    gpu_node_pools,
    model_store,
    monitoring,
    network,
    rag,
    ray_service,
    tenants,
)
from infra.config.base import ENVIRONMENTS

# Stack-file key -> that section's defaults per environment.
SECTIONS: dict[str, Mapping[str, Any]] = {
    "costCeilingPerHour": cost_ceiling.PROFILES,
    "network": network.PROFILES,
    "cluster": cluster.PROFILES,
    "gpuNodePools": gpu_node_pools.PROFILES,
    "rayService": ray_service.PROFILES,
    "monitoring": monitoring.PROFILES,
    "exposure": exposure.PROFILES,
    "modelStore": model_store.PROFILES,
    "gcsFaultTolerance": gcs_fault_tolerance.PROFILES,
    "rag": rag.PROFILES,
    "serving": tenants.PROFILES,  # serving.tenants.redisFailureMode per environment
}
# What each environment gets for keys its stack file leaves out. Lists are replaced, not merged.
PROFILES: dict[str, dict[str, Any]] = {
    env: {key: by_env[env] for key, by_env in SECTIONS.items() if env in by_env}
    for env in ENVIRONMENTS
}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def with_profile(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stack file's values laid over its environment's profile defaults."""
    env = values.get("environment")
    base = copy.deepcopy(PROFILES[env]) if isinstance(env, str) and env in PROFILES else {}
    return _merge(base, copy.deepcopy(dict(values)))
