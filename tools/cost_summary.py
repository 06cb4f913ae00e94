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


def database_cost(clusters: list[Any], instances: list[Any]) -> dict[str, Any] | None:
    """The RAG database's compute per hour, from the rendered Aurora cluster (its Serverless v2
    ACU range) and instances: every instance at the minimum and at the maximum ACUs. None when
    the stack has no Aurora cluster. Storage and I/O are billed on top (docs/rag-aws.md)."""
    from infra.serving.vector_db import SERVERLESS_CLASS, USD_PER_ACU_HOUR

    if not clusters:
        return None
    (cluster,) = clusters  # one per stack (infra/serving/vector_db.py)
    scaling = cluster.inputs.get("serverlessv2ScalingConfiguration") or {}
    lo, hi = float(scaling.get("minCapacity", 0)), float(scaling.get("maxCapacity", 0))
    n = sum(1 for i in instances if i.inputs.get("instanceClass") == SERVERLESS_CLASS)
    return {
        "cluster": cluster.inputs.get("clusterIdentifier"),
        "instances": n,
        "acuRange": [lo, hi],
        "usdPerAcuHour": USD_PER_ACU_HOUR,
        "usdPerHourMin": round(n * lo * USD_PER_ACU_HOUR, 2),
        "usdPerHourMax": round(n * hi * USD_PER_ACU_HOUR, 2),
    }


def database_cost_markdown(c: dict[str, Any]) -> str:
    return "\n".join([
        "", "## RAG database (Aurora Serverless v2, on-demand USD/h)", "",
        "| cluster | instances | ACU per instance | at minimum | at maximum |",
        "|---|---|---|---|---|",
        f"| {c['cluster']} | {c['instances']} | {c['acuRange'][0]:g}-{c['acuRange'][1]:g} "
        f"| {c['usdPerHourMin']:.2f} | {c['usdPerHourMax']:.2f} |", "",
        f"{c['usdPerAcuHour']} USD per ACU-hour (Aurora Standard); storage and I/O on top; a "
        "paused instance (minimum 0) costs no compute.",
    ]) + "\n"
