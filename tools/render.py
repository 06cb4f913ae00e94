"""Offline render: run the Pulumi program for one stack under the SDK mocks and write what it
would declare to `build/<stack>/`.

    python -m tools.render --stack prod [--out build]
    python -m tools.render [--out build]          every stack file, in one process
    python -m tools.render --compare Pulumi.prod.yaml /tmp/Pulumi.prod.yaml

`--compare OLD NEW` renders two stack files and says how KubeRay would apply NEW's RayService
over OLD's: in place (serveConfigV2 changes, replica bounds, worker groups appended at the end)
or a new cluster (any other rayClusterConfig change; not applied at all under upgradeStrategy
None).

It differs from `pulumi preview`: nothing is looked up in a cloud account, nothing is diffed
against state, and values known only after creation (ids, ARNs, endpoints) show as
placeholders like `<vpc-id>`. Secrets show as `[secret]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import runpy
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import config as rc

from infra.config import PROJECT, ConfigError
from serve_app.yaml_keys import boolean_key_problems
from tools import rayservice_summary
from tools.cost_summary import (
    database_cost,
    database_cost_markdown,
    gpu_cost,
    gpu_cost_markdown,
)
from tools.graph import Graph
from tools.mocks import SECRET, PlatformMocks, RecordingMonitor, Resource

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


@dataclass
class Rendered:
    stack: str
    resources: list[Resource]
    # Children of remote components (pulumi-eks' EKS cluster) that the mocks registered by hand:
    # not declared by the program, but nodes of the dependency graph.
    children: list[Resource] = field(default_factory=list)

    def graph(self) -> Graph:
        """Who waits for whom at `pulumi up` (see tools/graph.py)."""
        return Graph.build(self.resources + self.children)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def named(self, typ: str, name: str) -> Resource:
        found = [r for r in self.of_type(typ) if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {typ} named {name}")
        return found[0]

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the program declares (not Helm releases, not providers)."""
        return [
            r.inputs
            for r in self.resources
            if r.type.startswith("kubernetes:")
            and not r.type.startswith(("kubernetes:helm.sh", "pulumi:providers"))
            and "kind" in r.inputs
        ]

    def custom_resources(self) -> list[dict[str, Any]]:
        return [
            o for o in self.kubernetes_objects()
            if not _is_builtin_api(str(o.get("apiVersion", "")))
        ]

    def helm_releases(self) -> list[Resource]:
        return [r for r in self.resources if r.type.startswith("kubernetes:helm.sh/")]


def _is_builtin_api(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    # Core groups have no dot ("", apps, batch, policy) or end in .k8s.io.
    return "." not in group or group.endswith(".k8s.io")


# ------------------------------------------------------------------------------- stack config
def stack_config(
    stack: str, root: Path = ROOT, path: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as Pulumi hands it to a program: JSON text per key, and the keys
    holding secrets. Encrypted values cannot be read offline and become `[secret]`. `path`: a
    stack file elsewhere (default `<root>/Pulumi.<stack>.yaml`)."""
    path = path or root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}")
    doc = yaml.safe_load(path.read_text()) or {}
    problems = boolean_key_problems(doc.get("config") or {})
    if problems:  # json.dumps would turn the key into "true" and the error would name that
        raise ConfigError([f"{path.name}: config.{p}" for p in problems])
    values: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in (doc.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        unsealed, had_secret = _unseal(value)
        values[full] = unsealed if isinstance(unsealed, str) else json.dumps(unsealed)
        if had_secret:
            secrets.append(full)
    return values, secrets


def _unseal(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET, True
    if isinstance(value, dict):
        pairs = {k: _unseal(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        pairs_l = [_unseal(v) for v in value]
        return [v for v, _ in pairs_l], any(s for _, s in pairs_l)
    return value, False


# ------------------------------------------------------------------------------------- render
def render_stack(
    stack: str,
    overrides: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    root: Path = ROOT,
    stack_file: Path | None = None,
) -> Rendered:
    """Run `__main__.py` for `stack` under the mocks. `overrides` replace whole top-level keys
    (given without the namespace, as Python values) for tests; `stack_file` reads the config
    from another file than `Pulumi.<stack>.yaml`."""
    values, secrets = stack_config(stack, root, stack_file)
    for key, value in (overrides or {}).items():
        values[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    secrets += [f"{PROJECT}:{k}" for k in secret_keys or []]

    _ensure_event_loop()
    mocks = PlatformMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.settings.ROOT.set(None)  # a fresh Stack resource per render
    rc.set_all_config(values, secrets)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    sys.path.insert(0, str(root))
    try:
        pulumi.runtime.test(lambda: runpy.run_path(str(root / "__main__.py")))()
    finally:
        sys.path.remove(str(root))
    return Rendered(stack, monitor.recorded, monitor.children)


def _ensure_event_loop() -> None:
    """The SDK's mocks use the thread's current event loop; code that ran `asyncio.run` before
    (an async test, say) leaves none set, and the render would fail with a RuntimeError."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


# -------------------------------------------------------------------------------------- write
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def write(rendered: Rendered, out: Path, serving_models: list[str] | None = None) -> Path:
    target = out / rendered.stack
    if target.exists():
        shutil.rmtree(target)
    (target / "kubernetes").mkdir(parents=True)
    (target / "helm").mkdir()
    (target / "aws").mkdir()

    # Names, not registration order (which is concurrent), so that renders diff cleanly.
    for obj in rendered.kubernetes_objects():
        meta = obj.get("metadata") or {}
        name = _slug(f"{obj['kind']}-{meta.get('namespace', '')}-{meta.get('name', '')}")
        (target / "kubernetes" / f"{name}.yaml").write_text(
            yaml.safe_dump(_manifest_order(obj), sort_keys=False)
        )
    for r in rendered.helm_releases():
        (target / "helm" / f"{_slug(r.name)}.yaml").write_text(
            yaml.safe_dump(r.inputs, sort_keys=True)
        )
    for r in rendered.resources:
        if r.type.startswith(("aws:", "eks:")) or r.type == "pulumi:providers:aws":
            folder = target / "aws" / _slug(r.type.replace(":", "_").replace("/", "_"))
            folder.mkdir(exist_ok=True)
            (folder / f"{_slug(r.name)}.json").write_text(
                json.dumps({"type": r.type, "name": r.name, "protect": r.protect,
                            "inputs": r.inputs}, indent=2, sort_keys=True)
            )
    (target / "graph.json").write_text(json.dumps(rendered.graph().to_json(), indent=2))
    summary = summarize(rendered, serving_models)
    cost_md = ""
    if (ROOT / f"Pulumi.{rendered.stack}.yaml").exists():
        values, secrets = stack_config(rendered.stack)
        summary["gpuCost"] = gpu_cost(values, secrets, [
            o for o in rendered.custom_resources() if o.get("kind") == "NodePool"])
        cost_md = gpu_cost_markdown(summary["gpuCost"])
    db_cost = database_cost(rendered.of_type("aws:rds/cluster:Cluster"),
                            rendered.of_type("aws:rds/clusterInstance:ClusterInstance"))
    if db_cost is not None:
        summary["databaseCost"] = db_cost
        cost_md += database_cost_markdown(db_cost)
    (target / "summary.json").write_text(json.dumps(summary, indent=2))
    (target / "summary.md").write_text(summary_markdown(summary) + cost_md)
    return target


def _manifest_order(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first, as people write manifests; the rest sorted (the wire
    format keeps no order)."""
    def sort(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sort(v[k]) for k in sorted(v)}
        return [sort(x) for x in v] if isinstance(v, list) else v

    head = [k for k in ("apiVersion", "kind", "metadata") if k in obj]
    return {k: sort(obj[k]) for k in head + sorted(set(obj) - set(head))}


def summarize(rendered: Rendered, serving_models: list[str] | None = None) -> dict[str, Any]:
    by_type = Counter(r.type for r in rendered.resources)
    pools = []
    for obj in rendered.custom_resources():
        if obj.get("kind") != "NodePool":
            continue
        template = obj["spec"]["template"]["spec"]
        reqs = {r["key"]: r.get("values", []) for r in template.get("requirements", [])}
        pools.append({
            "name": obj["metadata"]["name"],
            "instanceTypes": reqs.get("node.kubernetes.io/instance-type")
            or reqs.get("karpenter.k8s.aws/instance-family", []),
            "capacityTypes": reqs.get("karpenter.sh/capacity-type", []),
            # Sorted, as the manifests are: the spec's key order varies from run to run.
            "limits": dict(sorted(obj["spec"].get("limits", {}).items())),
            "weight": obj["spec"].get("weight"),
        })
    pools.sort(key=lambda p: (-(p["weight"] or 0), p["name"]))
    services = [o for o in rendered.custom_resources() if o.get("kind") == "RayService"]
    return {
        "stack": rendered.stack,
        "resources": len(rendered.resources),
        "resourcesByType": dict(sorted(by_type.items())),
        "cluster": _cluster_summary(rendered),
        "helmCharts": sorted(
            f"{r.inputs.get('name', r.name)}: {r.inputs.get('chart')} "
            f"{r.inputs.get('version', '(unpinned)')}"
            for r in rendered.helm_releases()
        ),
        "nodePools": pools,
        "modelsServed": serving_models or [],
        "monitoring": monitoring_summary(rendered),
        "rayServices": [rayservice_summary.summary(o) for o in services],
        "codeVersions": code_versions(rendered),
        "note": "offline render: cloud-assigned values are placeholders like <name-id>",
    }


def monitoring_summary(rendered: Rendered) -> dict[str, Any]:
    """The monitoring release, its monitors, alert names and Grafana dashboards."""
    from infra import versions
    from infra.platform import monitoring

    releases = [
        {k: r.inputs.get(k) for k in ("name", "chart", "version", "namespace")}
        for r in rendered.helm_releases()
        if r.inputs.get("chart") == versions.KUBE_PROMETHEUS_STACK_CHART.chart
    ]
    objs = rendered.kubernetes_objects()
    monitors = sorted(
        f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
        for o in objs if o["kind"] in ("PodMonitor", "ServiceMonitor")
    )
    # ServiceMonitors that other charts create (not expanded here): named by their release.
    monitors += sorted(
        f"ServiceMonitor of Helm release {r.inputs.get('name')}"
        for r in rendered.helm_releases() if monitoring.chart_makes_service_monitor(r.inputs)
    )
    alerts = sorted(
        rule["alert"]
        for o in objs if o["kind"] == "PrometheusRule"
        for group in o["spec"].get("groups", [])
        for rule in group.get("rules", []) if "alert" in rule
    )
    dashboards = sorted(
        f"{json.loads(text).get('title', key)} ({key})"
        for o in objs
        if o["kind"] == "ConfigMap"
        and (o["metadata"].get("labels") or {}).get(monitoring.DASHBOARD_LABEL)
        for key, text in (o.get("data") or {}).items()
    )
    return {"releases": releases, "monitors": monitors, "alerts": alerts,
            "dashboards": dashboards}


def _cluster_summary(rendered: Rendered) -> dict[str, Any]:
    """What a reviewer checks first: version and support policy, who reaches the API, pins."""
    clusters = rendered.of_type("eks:index:Cluster")
    if len(clusters) != 1:
        return {}
    eks = clusters[0].inputs
    cni = eks.get("vpcCniOptions") or {}
    addons = {"vpc-cni": cni.get("addonVersion"),
              "kube-proxy": (eks.get("kubeProxyAddonOptions") or {}).get("version")}
    addons |= {a.inputs["addonName"]: a.inputs.get("addonVersion")
               for a in rendered.of_type("aws:eks/addon:Addon")}
    public = eks.get("endpointPublicAccess")
    return {
        "kubernetesVersion": eks.get("version"),
        "supportType": (eks.get("upgradePolicy") or {}).get("supportType", "(EKS default)"),
        "endpoint": f"public, allow-list {eks.get('publicAccessCidrs')}" if public
        else "private",
        "apiAccess": sorted(
            f"tcp/{r.inputs.get('fromPort')} from "
            f"{r.inputs.get('cidrIpv4') or r.inputs.get('referencedSecurityGroupId')}"
            for r in rendered.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs.get("fromPort") == 443
        ),
        "networkPolicyEnforced": bool(cni.get("enableNetworkPolicy")),
        "addons": dict(sorted(addons.items())),
        "nodeClassAmis": dict(sorted(
            (o["metadata"]["name"], [t.get("alias") or t for t in o["spec"]["amiSelectorTerms"]])
            for o in rendered.custom_resources() if o.get("kind") == "EC2NodeClass"
        )),
    }


_BUNDLE = re.compile(r"serve_app-([0-9a-f]{64})\.zip$")


def code_versions(rendered: Rendered) -> list[dict[str, str]]:
    """Which serve_app bundle each Serve application of each RayService runs: the
    `runtime_env.working_dir` of its serveConfigV2 entry (content-addressed: the hash is the
    version), or `image` when the application runs the code baked into the image."""
    out = []
    for obj in rendered.custom_resources():
        if obj.get("kind") != "RayService":
            continue
        serve = yaml.safe_load(obj["spec"].get("serveConfigV2") or "{}") or {}
        for app in serve.get("applications", []):
            working_dir = (app.get("runtime_env") or {}).get("working_dir", "")
            found = _BUNDLE.search(working_dir)
            out.append({
                "rayService": obj["metadata"]["name"],
                "application": app.get("name", ""),
                "codeVersion": found.group(1)[:12] if found else "image",
                "workingDir": working_dir,
            })
    return out


def summary_markdown(s: dict[str, Any]) -> str:
    lines = [f"# Offline render of stack `{s['stack']}`", "", s["note"], "",
             f"## Resources by type ({s['resources']})", "", "| type | count |", "|---|---|"]
    lines += [f"| `{t}` | {n} |" for t, n in s["resourcesByType"].items()]
    if s.get("cluster"):
        lines += ["", "## Cluster", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |"
                  for k, v in s["cluster"].items()]
    lines += ["", "## Helm charts", ""] + [f"- {c}" for c in s.get("helmCharts", [])]
    lines += ["", "## NodePools", "", "| pool | instance types | capacity | limits | weight |",
              "|---|---|---|---|---|"]
    lines += [
        f"| {p['name']} | {', '.join(p['instanceTypes'])} | {', '.join(p['capacityTypes'])} "
        f"| {json.dumps(p['limits'])} | {p['weight']} |"
        for p in s["nodePools"]
    ]
    lines += ["", "## Models served", ""] + [f"- `{m}`" for m in s["modelsServed"]]
    mon = s["monitoring"]
    lines += ["", "## Monitoring", ""]
    lines += [f"- Helm release `{r['name']}`: {r['chart']} {r['version']} in `{r['namespace']}`"
              for r in mon["releases"]]
    lines += ["", f"Monitors ({len(mon['monitors'])}):", ""]
    lines += [f"- {m}" for m in mon["monitors"]]
    lines += ["", f"Dashboards ({len(mon['dashboards'])}):", ""]
    lines += [f"- {d}" for d in mon["dashboards"]]
    lines += ["", f"Alerts ({len(mon['alerts'])}):", ""]
    lines += [f"- `{a}`" for a in mon["alerts"]]
    for rs in s.get("rayServices", []):
        lines += rayservice_summary.markdown(rs)
    lines += ["", "## Code version per application", "",
              "| RayService | application | code version | working_dir |", "|---|---|---|---|"]
    lines += [f"| {c['rayService']} | {c['application']} | `{c['codeVersion']}` "
              f"| {c['workingDir'] or '-'} |" for c in s.get("codeVersions", [])]
    return "\n".join(lines) + "\n"


def _served_models(stack: str, stack_file: Path | None = None) -> list[str]:
    from infra.config import own_keys, validate

    values, secrets = stack_config(stack, path=stack_file)
    cfg = validate(*own_keys(values, set(secrets)))
    return [m.id for m in cfg.serving.models] + [
        f"{a.name} (alias)" for a in cfg.serving.aliases
    ]


def _stack_name(path: Path) -> str:
    """`Pulumi.team-a.yaml` -> `team-a` (the stack a file configures)."""
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")):
        raise FileNotFoundError(f"{path}: a stack file is named Pulumi.<stack>.yaml")
    return name.removeprefix("Pulumi.").removesuffix(".yaml")


def compare_stack_files(old: Path, new: Path) -> dict[str, Any]:
    """Render two stack files and say how KubeRay would apply the second over the first."""
    objs = []
    for path in (old, new):
        rendered = render_stack(_stack_name(path), stack_file=path)
        (obj,) = [o for o in rendered.custom_resources() if o.get("kind") == "RayService"]
        objs.append(obj)
    return rayservice_summary.compare(*objs)


def stack_names(root: Path = ROOT) -> list[str]:
    """Every stack with a `Pulumi.<stack>.yaml` in `root`: dev, staging, prod, then the others
    by name."""
    names = [_stack_name(p) for p in root.glob("Pulumi.*.yaml")]
    return sorted(names, key=lambda s: (STACKS.index(s) if s in STACKS else len(STACKS), s))


def render_all(out: Path, stacks: list[str]) -> int:
    """Render `stacks` one after the other in this process (the imports, most of a single
    render's time, are paid once). One line per stack; a bad stack does not stop the others."""
    start, failed = time.perf_counter(), []
    for stack in stacks:
        began = time.perf_counter()
        try:
            rendered = render_stack(stack)
            target = write(rendered, out, _served_models(stack))
        except (ConfigError, FileNotFoundError) as exc:
            print(f"error: {stack}: {exc}", file=sys.stderr)
            failed.append(stack)
            continue
        print(f"wrote {target} ({len(rendered.resources)} resources, "
              f"{time.perf_counter() - began:.1f} s)")
    print(f"{len(stacks) - len(failed)} of {len(stacks)} stacks rendered in "
          f"{time.perf_counter() - start:.1f} s" + (f"; failed: {', '.join(failed)}" if failed
                                                     else ""))
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stack", help="dev, staging, prod or a forked stack (default: every stack file)"
    )
    parser.add_argument("--out", default=str(ROOT / "build"), type=Path)
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("OLD", "NEW"),
        help="two stack files: is NEW's RayService applied in place or as a new cluster?",
    )
    args = parser.parse_args(argv)
    if args.compare:
        try:
            result = compare_stack_files(*args.compare)
        except (ConfigError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for key, value in result.items():
            print(f"{key}: {value}")
        return 0
    if not args.stack:
        return render_all(Path(args.out), stack_names())
    try:
        rendered = render_stack(args.stack)
        target = write(rendered, Path(args.out), _served_models(args.stack))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target} ({len(rendered.resources)} resources)")
    print((target / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
