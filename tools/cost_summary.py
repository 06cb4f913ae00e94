"""The GPU cost section of the render summary: per pool and in total, the most the stack can
spend per hour on GPU nodes at its NodePool limits (priced from the rendered NodePools, as the
policy pack prices them), and what the models' minimum replicas cost all the time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.capacity import catalog, cost
from infra.config import own_keys, validate
from infra.config.cost_ceiling import min_replica_costs


def gpu_cost(values: Mapping[str, Any], secrets: list[str],
             nodepools: list[dict[str, Any]]) -> dict[str, Any]:
    region = str(values.get("aws:region", ""))
    cfg = validate(*own_keys(values, set(secrets)))
    # Sorted by pool name: NodePools register concurrently, and the summary must diff cleanly.
    pools = sorted((c for c in (cost.nodepool_worst_case(o, region) for o in nodepools) if c),
                   key=lambda c: c.pool)
    floor = min_replica_costs(cfg, region)
    return {
        "region": region,
        "pricesAsOf": catalog.PRICES_AS_OF,
        "ceilingUsdPerHour": cfg.cost_ceiling_per_hour,
        "worstCase": [{"pool": c.pool, "usdPerHour": c.usd_per_hour, "nodes": c.nodes}
                      for c in pools],
        "worstCaseUsdPerHour": round(sum(c.usd_per_hour for c in pools), 2),
        "minReplicas": [{"model": m, "pool": p, "usdPerHour": c.usd_per_hour, "nodes": c.nodes}
                        for m, p, c in floor],
        "minReplicasUsdPerHour": round(sum(c.usd_per_hour for _, _, c in floor), 2),
    }


def gpu_cost_markdown(c: dict[str, Any]) -> str:
    def fleet(nodes: dict[str, int]) -> str:
        return ", ".join(f"{n} x {t}" for t, n in sorted(nodes.items())) or "-"

    lines = ["", "## GPU cost (on-demand USD/h)", "",
             f"Prices: {c['region']}, infra/capacity/catalog.py (as of {c['pricesAsOf']}). "
             "Spot is never dearer, so these bound spot pools too.", "",
             "| pool | most per hour at its limits | fleet that reaches it |", "|---|---|---|"]
    lines += [f"| {p['pool']} | {p['usdPerHour']:.2f} | {fleet(p['nodes'])} |"
              for p in c["worstCase"]]
    lines += [f"| **total** | **{c['worstCaseUsdPerHour']:.2f}** "
              f"(costCeilingPerHour {c['ceilingUsdPerHour']:g}) | |", "",
              "| model | pool | minimum replicas, all the time | fleet |", "|---|---|---|---|"]
    lines += [f"| {m['model']} | {m['pool']} | {m['usdPerHour']:.2f} | {fleet(m['nodes'])} |"
              for m in c["minReplicas"]]
    lines += [f"| **total** | | **{c['minReplicasUsdPerHour']:.2f}** | |"]
    return "\n".join(lines) + "\n"
