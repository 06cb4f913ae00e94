"""The GPU cost section of the render summary: per pool and in total, the most the stack can
spend per hour on GPU nodes at its NodePool limits (priced from the rendered NodePools, as the
policy pack prices them), and what the models' minimum replicas cost all the time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.capacity import catalog, cost
from infra.capacity import fit as capacity
from infra.config import StackConfig, own_keys, validate
from infra.config.cost_ceiling import min_replica_costs


def gpu_cost(values: Mapping[str, Any], secrets: list[str],
             nodepools: list[dict[str, Any]]) -> dict[str, Any]:
    region = str(values.get("aws:region", ""))
    cfg = validate(*own_keys(values, set(secrets)))
    # Sorted by pool name: NodePools register concurrently, and the summary must diff cleanly.
    pools = sorted((c for c in (cost.nodepool_worst_case(o, region) for o in nodepools) if c),
                   key=lambda c: c.pool)
    floor = min_replica_costs(cfg, region)
    tasks = {m.id: m.task for m in cfg.serving.models}
    return {
        "region": region,
        "pricesAsOf": catalog.PRICES_AS_OF,
        "ceilingUsdPerHour": cfg.cost_ceiling_per_hour,
        "worstCase": [{"pool": c.pool, "usdPerHour": c.usd_per_hour, "nodes": c.nodes}
                      for c in pools],
        "worstCaseUsdPerHour": round(sum(c.usd_per_hour for c in pools), 2),
        "minReplicas": [{"model": m, "task": tasks[m], "pool": p, "usdPerHour": c.usd_per_hour,
                         "nodes": c.nodes} for m, p, c in floor],
        "minReplicasUsdPerHour": round(sum(c.usd_per_hour for _, _, c in floor), 2),
        "gpuMemory": gpu_memory(cfg),
    }


def gpu_memory(cfg: StackConfig) -> list[dict[str, Any]]:
    """Per GPU model, one replica's GPU memory need as the capacity check counts it
    (infra/capacity/fit.py, memory_need: generative and pooling models alike) against the
    share vLLM takes of its GPUs (gpu_memory_utilization of each, whatever the need)."""
    out = []
    for m in cfg.serving.models:
        pool, _ = capacity.resolve_pool(m, list(cfg.gpu_node_pools))
        facts = capacity.model_facts(m)
        if m.accelerator.gpus_per_replica == 0 or pool is None or facts is None:
            continue
        need = capacity.memory_need(m, pool, facts)
        if isinstance(need, str):
            continue
        out.append({"model": m.id, "task": m.task, "pool": pool.name, "gpus": need.gpus,
                    "needGib": round(need.total_gib, 2), "budgetGib": round(need.budget_gib, 1),
                    "used": round(need.total_gib / need.budget_gib, 4)})
    return out


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
              "| model | task | pool | minimum replicas, all the time | fleet |",
              "|---|---|---|---|---|"]
    lines += [f"| {m['model']} | {m['task']} | {m['pool']} | {m['usdPerHour']:.2f} "
              f"| {fleet(m['nodes'])} |" for m in c["minReplicas"]]
    lines += [f"| **total** | | | **{c['minReplicasUsdPerHour']:.2f}** | |"]
    if c["gpuMemory"]:
        lines += ["", "GPU memory of one replica: the capacity check's lower bound of its need "
                  "against what vLLM takes of its GPUs (gpu_memory_utilization of each, whatever "
                  "the need). For generate models the rest is KV cache (more sequences at "
                  "once); embed and score models have none, so for them the rest sits idle.", "",
                  "| model | task | pool | GPUs | need GiB | vLLM takes GiB | used |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {g['model']} | {g['task']} | {g['pool']} | {g['gpus']} | "
                  f"{g['needGib']:.2f} | {g['budgetGib']:.1f} | {g['used']:.1%} |"
                  for g in c["gpuMemory"]]
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
