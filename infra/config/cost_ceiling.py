"""`costCeilingPerHour`: the most the GPU NodePools may cost per hour at their
limits, checked at load against the catalog's prices (infra/capacity/cost.py).
"""

from __future__ import annotations

from infra.capacity import cost
from infra.capacity import fit as capacity
from infra.capacity.catalog import UnknownRegionError, hourly_price, instance_types
from infra.config.base import PROJECT
from infra.config.stack import StackConfig

# The default ceiling of each environment (its profile's `costCeilingPerHour`).
PROFILES = dict(cost.DEFAULT_CEILING_USD_PER_HOUR)


def pool_costs(cfg: StackConfig, region: str) -> list[cost.PoolCost]:
    """Worst case of every GPU pool at its limits (the same limits `karpenter.nodepool` emits)."""
    out = []
    for p in cfg.gpu_node_pools:
        types = instance_types(p.family, p.sizes)
        cpu = p.limits.cpu or p.limits.gpus * cost.max_vcpu_per_gpu(types)
        out.append(cost.pool_worst_case(p.name, types, region, p.limits.gpus, cpu,
                                        p.limits.memory_gib))
    return out


def min_replica_costs(
    cfg: StackConfig, region: str
) -> list[tuple[str, str, cost.PoolCost]]:
    """(model id, pool, cheapest fleet for its minReplicas) of every GPU model: what runs all the
    time, priced per model on the pool the RayService places it on (infra/capacity/fit.py)."""
    out = []
    for m in cfg.serving.models:
        gpus = capacity.tensor_parallel_size(m)
        pool, _ = capacity.resolve_pool(m, list(cfg.gpu_node_pools))
        if gpus == 0 or pool is None:
            continue
        fleet = cost.min_replicas_cost(instance_types(pool.family, pool.sizes), region,
                                       m.autoscaling.min_replicas, gpus)
        out.append((m.id, pool.name, fleet))
    return out


def replica_usd_per_hour(cfg: StackConfig, region: str) -> dict[str, float]:
    """Model id -> on-demand USD per hour of one replica's GPUs: the GPU share of the smallest
    instance of its pool that holds the replica (the node Karpenter picks for the pod,
    infra/capacity/fit.py `gpu_pod_shape`), at the catalog's price in `region`. What the
    USD-per-1M-tokens recording rules (dashboards/rules.py `recordings`) multiply by the replicas
    each model runs. CPU-only models have no entry."""
    out: dict[str, float] = {}
    pools = list(cfg.gpu_node_pools)
    for m in cfg.serving.models:
        gpus = capacity.tensor_parallel_size(m)
        pool, _ = capacity.resolve_pool(m, pools)
        shape = capacity.gpu_pod_shape(pool, gpus) if gpus and pool is not None else None
        if shape is None:
            continue
        inst = shape.instance
        out[m.id] = round(hourly_price(inst.name, region) * gpus / inst.gpus, 6)
    return out


def cost_problems(cfg: StackConfig, region: str) -> list[str]:
    """The cost ceiling check: a region without prices, or a worst case above the ceiling."""
    try:
        pools = pool_costs(cfg, region)
    except UnknownRegionError as exc:
        return [f"aws:region: {exc.args[0]}"]
    total = sum(p.usd_per_hour for p in pools)
    if total <= cfg.cost_ceiling_per_hour:
        return []
    return [
        f"{PROJECT}:costCeilingPerHour: the GPU NodePools can cost {total:.2f} USD/h at their "
        f"limits in {region} ({'; '.join(p.describe() for p in pools)}), above "
        f"costCeilingPerHour {cfg.cost_ceiling_per_hour:g} USD/h: lower "
        f"gpuNodePools[].limits (gpus, cpu, memoryGib) or narrow sizes, or raise "
        f"costCeilingPerHour in a reviewed change"
    ]
