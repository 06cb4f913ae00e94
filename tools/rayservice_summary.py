"""The RayService rows of the render summary, and the in-place-or-new-cluster verdict between
two renders. Read from the rendered RayService object itself (not from the config), so the
summary says what the manifest would do."""

from __future__ import annotations

import json
from typing import Any

import yaml

from infra.serving.rayservice import in_place

UPGRADE_COST = {
    "NewCluster": "a second full cluster runs until it is ready: up to the new cluster's first"
    " replicas in extra GPUs per pool (below), on top of the old cluster",
    "None": "no extra GPUs; cluster changes are not applied (only serveConfigV2 changes)",
}


def _group_resources(group: dict[str, Any]) -> dict[str, str]:
    return group["template"]["spec"]["containers"][0]["resources"]["limits"]


def _declared(group: dict[str, Any]) -> dict[str, float]:
    """Custom resources of a group, read the way Ray's KubeRay autoscaler reads them."""
    raw = group.get("rayStartParams", {}).get("resources")
    return json.loads(raw[1:-1].replace("\\", "")) if raw else {}


def summary(obj: dict[str, Any]) -> dict[str, Any]:
    """Worker groups, GPUs per replica, max GPUs per model, upgrade strategy and its GPU cost."""
    spec = obj["spec"]
    cluster = spec["rayClusterConfig"]
    serve = yaml.safe_load(spec["serveConfigV2"])
    groups = []
    group_of_accelerator: dict[str, str] = {}
    for g in cluster["workerGroupSpecs"]:
        res = _group_resources(g)
        declared = _declared(g)
        for key in declared:
            if key.startswith("accelerator_type:"):
                group_of_accelerator[key.split(":", 1)[1]] = g["groupName"]
        groups.append({
            "name": g["groupName"],
            "pods": f"{g['minReplicas']}-{g['maxReplicas']}",
            "gpusPerPod": int(res.get("nvidia.com/gpu", 0)),
            "cpu": res["cpu"],
            "memory": res["memory"],
            "rayResources": declared,
        })
    models = []
    surge: dict[str, int] = {}
    for app in serve["applications"]:
        args = app["args"]
        if "serving" in args:  # gateway: direct, one application per model
            app_models = [m for m in args["serving"]["models"] if m["id"] == args["modelId"]]
        else:
            app_models = args["models"]
        for m in app_models:
            gpus = m["accelerator"]["gpusPerReplica"]
            auto = m["autoscaling"]
            group = group_of_accelerator.get(m["accelerator"].get("acceleratorType") or "", "?")
            models.append({
                "id": m["id"],
                "group": group,
                "gpusPerReplica": gpus,
                "replicas": f"{auto['minReplicas']}-{auto['maxReplicas']}",
                "maxGpus": gpus * auto["maxReplicas"],
            })
            surge[group] = surge.get(group, 0) + gpus * max(auto["minReplicas"], 1)
    strategy = spec["upgradeStrategy"]["type"]
    return {
        "name": obj["metadata"]["name"],
        "image": cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"],
        "upgradeStrategy": strategy,
        "upgradeGpuCost": UPGRADE_COST.get(strategy, "?"),
        "upgradeExtraGpus": surge if strategy == "NewCluster" else {},
        "initializingTimeout": obj["metadata"]["annotations"].get("ray.io/initializing-timeout"),
        "workerGroups": groups,
        "models": models,
    }


def markdown(s: dict[str, Any]) -> list[str]:
    lines = ["", "## RayService", "",
             f"`{s['name']}`, image `{s['image']}`, initializing timeout "
             f"{s['initializingTimeout']} (terminal when it fires)", "",
             f"Upgrade strategy **{s['upgradeStrategy']}**: {s['upgradeGpuCost']}.", ""]
    if s["upgradeExtraGpus"]:
        lines += ["| group | extra GPUs during an upgrade |", "|---|---|"]
        lines += [f"| {g} | {n} |" for g, n in s["upgradeExtraGpus"].items()]
        lines.append("")
    lines += ["| worker group | pods | GPUs per pod | CPU | memory | Ray resources |",
              "|---|---|---|---|---|---|"]
    lines += [
        f"| {g['name']} | {g['pods']} | {g['gpusPerPod']} | {g['cpu']} | {g['memory']} "
        f"| {json.dumps(g['rayResources'])} |"
        for g in s["workerGroups"]
    ]
    lines += ["", "| model | worker group | GPUs per replica | replicas | max GPUs |",
              "|---|---|---|---|---|"]
    lines += [
        f"| {m['id']} | {m['group']} | {m['gpusPerReplica']} | {m['replicas']} | {m['maxGpus']} |"
        for m in s["models"]
    ]
    return lines


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """How KubeRay 1.7.0 would apply the RayService `new` over `old`."""
    verdict = in_place(old["spec"]["rayClusterConfig"], new["spec"]["rayClusterConfig"])
    strategy = new["spec"]["upgradeStrategy"]["type"]
    if verdict == "new cluster" and strategy == "None":
        verdict = "not applied (upgradeStrategy None: only serveConfigV2 changes apply)"
    serve_changed = old["spec"]["serveConfigV2"] != new["spec"]["serveConfigV2"]
    old_groups = [g["groupName"] for g in old["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
    new_groups = [g["groupName"] for g in new["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
    return {
        "rayClusterConfig": verdict,
        "serveConfigV2": "changed (applied in place)" if serve_changed else "unchanged",
        "workerGroups": {"before": old_groups, "after": new_groups},
        "upgradeStrategy": strategy,
    }
