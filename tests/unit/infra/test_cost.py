"""infra/capacity/cost.py: the worst case of a pool at its limits is exact, the minimum-replica
fleet is the cheapest, NodePool manifests are read like the config."""

from __future__ import annotations

import itertools

import pytest

from infra.capacity import catalog, cost
from infra.capacity.catalog import instance_types


def brute_force(types, region, gpus, cpu=None, mem=None) -> float:
    """Every combination of node counts within the GPU limit (small cases only)."""
    best = 0.0
    ranges = [range(gpus // t.gpus + 1) for t in types]
    for counts in itertools.product(*ranges):
        g = sum(n * t.gpus for n, t in zip(counts, types, strict=True))
        c = sum(n * t.vcpu for n, t in zip(counts, types, strict=True))
        m = sum(n * t.memory_gib for n, t in zip(counts, types, strict=True))
        if g <= gpus and (cpu is None or c <= cpu) and (mem is None or m <= mem):
            best = max(best, sum(n * catalog.hourly_price(t.name, region)
                                 for n, t in zip(counts, types, strict=True)))
    return round(best, 4)


@pytest.mark.parametrize(("family", "sizes", "gpus", "cpu", "mem"), [
    ("g6e", ["xlarge", "2xlarge", "12xlarge"], 6, None, None),
    ("g6e", ["xlarge", "4xlarge", "16xlarge"], 5, 40, None),
    ("g5", ["xlarge", "8xlarge", "12xlarge"], 6, 64, 200),
    ("p4d", None, 17, None, None),
])
def test_worst_case_is_the_exact_knapsack(family, sizes, gpus, cpu, mem) -> None:
    types = instance_types(family, sizes)
    got = cost.pool_worst_case("p", types, "us-west-2", gpus, cpu, mem)
    assert got.usd_per_hour == brute_force(types, "us-west-2", gpus, cpu, mem)
    used = sum(n * catalog.by_name(t).gpus for t, n in got.nodes.items())  # type: ignore[union-attr]
    assert used <= gpus


def test_worst_case_of_known_prod_pool() -> None:
    # 32 GPUs of g6e, dearest per GPU is g6e.16xlarge (7.57719 USD/h for 1 GPU): 242.47 USD/h.
    c = cost.pool_worst_case("g6e", instance_types("g6e"), "us-west-2", 32)
    assert c.usd_per_hour == pytest.approx(32 * 7.57719, abs=1e-3)
    assert c.nodes == {"g6e.16xlarge": 32}


def test_unpriced_region_is_an_error_naming_the_priced_ones() -> None:
    with pytest.raises(catalog.UnknownRegionError, match="us-east-1, us-west-2"):
        cost.pool_worst_case("g5", instance_types("g5"), "ap-south-2", 4)


def test_every_catalogued_type_has_a_price_in_every_priced_region() -> None:
    for region, table in catalog.ON_DEMAND_USD_PER_HOUR.items():
        for family in catalog.CATALOG.values():
            for t in family.values():
                assert table[t.name] > 0, (region, t.name)


def test_min_replicas_take_the_cheapest_fleet() -> None:
    g6e = instance_types("g6e")
    one = cost.min_replicas_cost(g6e, "us-west-2", 3, 1)
    assert one.nodes == {"g6e.xlarge": 3} and one.usd_per_hour == pytest.approx(3 * 1.861)
    tp4 = cost.min_replicas_cost(g6e, "us-west-2", 2, 4)  # 4-GPU replicas: 12xlarge is cheapest
    assert tp4.nodes == {"g6e.12xlarge": 2}
    assert cost.min_replicas_cost(g6e, "us-west-2", 0, 1).usd_per_hour == 0
    with pytest.raises(ValueError, match="8-GPU replica"):
        cost.min_replicas_cost(instance_types("g5", ["xlarge"]), "us-west-2", 1, 8)


@pytest.mark.parametrize(("text", "value"), [
    (64, 64.0), ("64", 64.0), ("500m", 0.5), ("512Gi", 512.0), ("1Ti", 1024.0),
    ("2048Mi", 2.0), ("x", None),
])
def test_quantities(text, value) -> None:
    assert cost.quantity(text) == value


def test_nodepool_manifest_without_gpu_limit_cannot_be_bounded() -> None:
    pool = {"metadata": {"name": "g5"}, "spec": {"limits": {"cpu": 64}, "template": {"spec": {
        "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                          "values": ["g5.xlarge"]}]}}}}
    with pytest.raises(ValueError, match=r"no nvidia\.com/gpu limit"):
        cost.nodepool_worst_case(pool, "us-west-2")
    pool["spec"]["limits"]["nvidia.com/gpu"] = 2
    assert cost.nodepool_worst_case(pool, "us-west-2").usd_per_hour == pytest.approx(2 * 1.006)
