"""GPU cost: the most a stack can spend per hour on GPU nodes at its NodePool limits, and what its
minimum replicas cost all the time.

Pure functions over `infra/capacity/catalog.py` (no Pulumi, no pydantic), so that the config
check, the render summary and the CrossGuard pack (`policy/`) compute the same numbers from the
same table.

Why the worst case is a knapsack: Karpenter never launches an instance type whose capacity would
push a NodePool past any of its `spec.limits` (kubernetes-sigs/karpenter,
pkg/controllers/provisioning/scheduling, `filterByRemainingResources`). So the most a pool can
cost is the dearest set of nodes of its instance types whose GPUs, vCPUs and memory each stay
within the limits. Prices are on-demand: spot is never dearer, so this bounds both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from infra.capacity.catalog import InstanceType, hourly_price

# Default `costCeilingPerHour` (USD/h) per environment profile: a little above the worst case of
# the profile's own GPU pools (dev 18.51, staging 93.39, prod 373.88 in us-west-2), so that
# raising a pool limit in a fork is a visible, reviewed change of the ceiling too.
DEFAULT_CEILING_USD_PER_HOUR: dict[str, float] = {"dev": 25.0, "staging": 100.0, "prod": 400.0}


@dataclass(frozen=True)
class PoolCost:
    """The worst case of one pool: USD/h and the nodes that reach it."""

    pool: str
    usd_per_hour: float
    nodes: dict[str, int] = field(default_factory=dict)  # instance type -> count

    def describe(self) -> str:
        fleet = " + ".join(f"{n} x {t}" for t, n in sorted(self.nodes.items())) or "no node"
        return f"{self.pool} {self.usd_per_hour:.2f} USD/h ({fleet})"


def max_vcpu_per_gpu(types: Iterable[InstanceType]) -> int:
    """The most vCPUs one GPU brings among these types: GPUs x this is a CPU limit that never
    binds before the GPU limit does."""
    return max(t.vcpu // t.gpus for t in types)


def pool_worst_case(
    pool: str,
    types: list[InstanceType],
    region: str,
    gpus: int,
    cpu: int | None = None,
    memory_gib: int | None = None,
) -> PoolCost:
    """The dearest fleet of `types` within the limits (exact: bounded knapsack over the types).
    Raises catalog.UnknownRegionError for a region without prices."""
    priced = sorted(((t, hourly_price(t.name, region)) for t in types), key=lambda p: p[0].name)
    total, counts = _dearest(tuple(priced), gpus, cpu, memory_gib)
    nodes = {t.name: n for (t, _), n in zip(priced, counts, strict=False) if n}
    return PoolCost(pool, round(total, 4), nodes)


# Cached: one render prices each pool three times (config check, summary, policy) with the
# same inputs, and the search is the largest part of a render's own time.
@cache
def _dearest(
    priced: tuple[tuple[InstanceType, float], ...], gpus: int, cpu: int | None,
    memory_gib: int | None,
) -> tuple[float, tuple[int, ...]]:
    @cache
    def best(i: int, g: int, c: int | None, m: int | None) -> tuple[float, tuple[int, ...]]:
        if i == len(priced):
            return 0.0, ()
        t, price = priced[i]
        top: tuple[float, tuple[int, ...]] | None = None
        k = 0
        while g - k * t.gpus >= 0 and _fits(c, k * t.vcpu) and _fits(m, k * t.memory_gib):
            value, counts = best(i + 1, g - k * t.gpus, _less(c, k * t.vcpu),
                                 _less(m, k * t.memory_gib))
            if top is None or value + k * price > top[0] + 1e-9:
                top = (value + k * price, (k, *counts))
            k += 1
        assert top is not None  # k = 0 always fits
        return top

    return best(0, gpus, cpu, memory_gib)


def _less(limit: int | None, used: int) -> int | None:
    return None if limit is None else limit - used


def _fits(limit: int | None, used: int) -> bool:
    return limit is None or used <= limit


def min_replicas_cost(
    types: list[InstanceType], region: str, replicas: int, gpus_per_replica: int
) -> PoolCost:
    """The cheapest fleet of `types` that holds `replicas` replicas of `gpus_per_replica` GPUs each
    (one replica never spans nodes). Priced alone, per model: models that share a pool may pack a
    little tighter together."""
    if replicas <= 0:
        return PoolCost("", 0.0, {})
    slots = [
        (t, hourly_price(t.name, region), t.gpus // max(gpus_per_replica, 1))
        for t in types
        if t.gpus >= gpus_per_replica
    ]
    if not slots:
        raise ValueError(f"no instance type holds a {gpus_per_replica}-GPU replica")

    @cache
    def cheapest(left: int) -> tuple[float, tuple[str, ...]]:
        if left <= 0:
            return 0.0, ()
        options = []
        for t, price, per_node in slots:
            cost, fleet = cheapest(left - per_node)
            options.append((cost + price, (t.name, *fleet)))
        return min(options)

    total, fleet = cheapest(replicas)
    nodes: dict[str, int] = {}
    for name in fleet:
        nodes[name] = nodes.get(name, 0) + 1
    return PoolCost("", round(total, 4), nodes)


# ------------------------------------------------------------------ from a NodePool manifest
# The render summary and the policy pack price what the program declares, not the config.
_INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def quantity(value: object) -> float | None:
    """A Kubernetes quantity ("64", "500m", "512Gi", 64) as a number (GiB for memory units)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    units = {"m": 1e-3, "Ki": 2**-20, "Mi": 2**-10, "Gi": 1.0, "Ti": 2**10,
             "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            try:
                return float(text[: -len(suffix)]) * factor
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


def nodepool_instance_types(obj: dict) -> list[str]:
    """The instance types a NodePool's `In` requirement on instance-type allows ([] if none)."""
    reqs = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("requirements")
    for r in reqs or []:
        if r.get("key") == _INSTANCE_TYPE and r.get("operator") == "In":
            return [str(v) for v in r.get("values") or []]
    return []


def nodepool_worst_case(obj: dict, region: str) -> PoolCost | None:
    """Worst case of a NodePool manifest whose instance types are all catalogued GPU types
    (None when it names none of them). Raises ValueError for a GPU NodePool it cannot bound."""
    from infra.capacity.catalog import by_name

    names = nodepool_instance_types(obj)
    types = [t for t in (by_name(n) for n in names) if t is not None]
    if not types:
        return None
    name = str((obj.get("metadata") or {}).get("name", "?"))
    if len(types) != len(names):
        unknown = sorted(set(names) - {t.name for t in types})
        raise ValueError(
            f"NodePool {name}: instance types {unknown} are not in infra/capacity/catalog.py"
        )
    limits = (obj.get("spec") or {}).get("limits") or {}
    gpus = quantity(limits.get("nvidia.com/gpu"))
    if gpus is None:
        raise ValueError(f"NodePool {name}: no nvidia.com/gpu limit, so no bound on its cost")
    cpu, mem = quantity(limits.get("cpu")), quantity(limits.get("memory"))
    return pool_worst_case(name, types, region, int(gpus),
                           None if cpu is None else int(cpu),
                           None if mem is None else int(mem))
