"""Creation-order checks on a render's dependency graph (tools/graph.py), for every stack.

Two rules, generic over whatever the program declares (AWS foundation, KubeRay, monitoring,
RayService, load balancers, ...):

1. The cluster first. Every AWS resource that names the EKS cluster (an input called
   `clusterName`, or any `aws:eks/*` resource), every Kubernetes object, Helm release and
   Kubernetes provider waits for the EKS cluster. The mocks accept a plain-string cluster name
   at any time; EKS rejects it until the cluster exists.
2. Nodes before what needs them. Every pod spec (a Kubernetes object's `containers` holder, a
   Helm values block with a `nodeSelector`, an EKS add-on's `configurationValues` block with
   one) is matched, by its nodeSelector, required node affinity and tolerations, against the
   nodes the program provides: managed node groups (their `labels` and `taints`) and Karpenter
   NodePools (template labels, `In` requirements, taints). It must select at least one, and
   wait for at least one it selects. A Helm release with no `nodeSelector` at all must be
   listed in `NO_POD_PLACEMENT` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tools.graph import Graph, label
from tools.mocks import Resource
from tools.render import Rendered

EKS_CLUSTER_TYPES = frozenset({"eks:index:Cluster", "aws:eks/cluster:Cluster"})
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
EKS_ADDON = "aws:eks/addon:Addon"
# Labels every node of ours carries without anyone setting them (kubelet's well-known labels).
WELL_KNOWN = {"kubernetes.io/os": "linux"}
# Helm releases whose values set no nodeSelector, by release name, with the reason that is fine.
NO_POD_PLACEMENT: dict[str, str] = {
    "karpenter-crd": "installs CustomResourceDefinitions only, no pods",
}
# EKS managed node groups spell taint effects in upper snake case.
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
            "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


# ------------------------------------------------------------------------- rule 1: cluster
def cluster_urns(graph: Graph) -> set[str]:
    return {u for u, r in graph.nodes.items() if r.type in EKS_CLUSTER_TYPES}


def names_the_cluster(r: Resource) -> str | None:
    """Why `r` needs the cluster to exist, or None when it does not."""
    if r.type in EKS_CLUSTER_TYPES:
        return None
    if r.type.startswith("kubernetes:") or r.type == "pulumi:providers:kubernetes":
        return "it is applied through the cluster's Kubernetes API"
    if r.type.startswith("aws:"):
        found = _find_key(r.inputs, "clusterName")
        if found is not None:
            return f"its input clusterName is {found!r}"
        if r.type.startswith("aws:eks/"):
            return "it is an EKS sub-resource"
    return None


def cluster_order_problems(rendered: Rendered) -> list[str]:
    graph = rendered.graph()
    clusters = cluster_urns(graph)
    if not clusters:
        return ["no EKS cluster in the render (expected an eks:index:Cluster)"]
    problems = []
    for urn, r in graph.nodes.items():
        why = names_the_cluster(r)
        if why is None or r.parent in clusters:
            continue
        if not clusters & graph.waits_for(urn).keys():
            direct = ", ".join(sorted(label(e.target) for e in graph.edges.get(urn, []))) or "none"
            problems.append(
                f"{label(urn)} can be created before the EKS cluster exists ({why}); it waits "
                f"only for: {direct}. Pass the cluster's output (e.g. `cluster.name`, which is "
                f"`eks_cluster.name`) instead of a plain string, use `cluster.provider` for "
                f"Kubernetes objects, or add depends_on=[the cluster]."
            )
    return problems


def _find_key(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                return v
            found = _find_key(v, key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for v in value:
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------- rule 2: nodes
@dataclass(frozen=True)
class NodeSource:
    """Nodes the program provides: who creates them, their labels, allowed values, taints."""

    urn: str
    labels: dict[str, str]
    allowed: dict[str, frozenset[str]]  # Karpenter `In` requirements: key -> values
    taints: tuple[tuple[str, str | None, str], ...]  # (key, value, effect)

    def offers(self, key: str, value: str) -> bool:
        if key in self.labels:
            return self.labels[key] == value
        if key in self.allowed:
            return value in self.allowed[key]
        return WELL_KNOWN.get(key) == value


def node_sources(graph: Graph) -> list[NodeSource]:
    out = []
    for urn, r in graph.nodes.items():
        if r.type == NODE_GROUP:
            arch = "arm64" if "ARM" in str(r.inputs.get("amiType", "")) else "amd64"
            out.append(NodeSource(
                urn,
                {"kubernetes.io/arch": arch, **(r.inputs.get("labels") or {})},
                {},
                tuple((t["key"], t.get("value"), _EFFECTS.get(t["effect"], t["effect"]))
                      for t in r.inputs.get("taints") or []),
            ))
        elif r.type == NODEPOOL:
            template = r.inputs["spec"]["template"]
            reqs = template["spec"].get("requirements") or []
            out.append(NodeSource(
                urn,
                dict((template.get("metadata") or {}).get("labels") or {}),
                {q["key"]: frozenset(q.get("values") or []) for q in reqs
                 if q.get("operator") == "In"},
                tuple((t["key"], t.get("value"), t["effect"])
                      for t in template["spec"].get("taints") or []),
            ))
    return out


def tolerates(tolerations: list[dict[str, Any]], taint: tuple[str, str | None, str]) -> bool:
    key, value, effect = taint
    if effect == "PreferNoSchedule":
        return True
    for t in tolerations or []:
        if t.get("effect") not in (None, "", effect):
            continue
        if t.get("operator") == "Exists" and t.get("key") in (None, "", key):
            return True
        if t.get("key") == key and t.get("value") == value:
            return True
    return False


def eligible(sources: list[NodeSource], selector: dict[str, str],
             tolerations: list[dict[str, Any]],
             terms: list[list[dict[str, Any]]] | None = None) -> list[NodeSource]:
    """Sources whose nodes the pod may land on: nodeSelector, required node affinity (any
    term; within a term every `In`/`Exists` expression; other operators are not narrowed on)
    and taints."""
    def meets(s: NodeSource, expr: dict[str, Any]) -> bool:
        key, op = expr.get("key", ""), expr.get("operator")
        if op == "In":
            return any(s.offers(key, str(v)) for v in expr.get("values") or [])
        if op == "Exists":
            return key in s.labels or key in s.allowed or key in WELL_KNOWN
        return True

    return [
        s for s in sources
        if all(s.offers(k, str(v)) for k, v in selector.items())
        and (not terms or any(all(meets(s, e) for e in t) for t in terms))
        and all(tolerates(tolerations, t) for t in s.taints)
    ]


@dataclass(frozen=True)
class Placement:
    where: str  # a path inside the object, for messages
    selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    # requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[].matchExpressions
    affinity_terms: list[list[dict[str, Any]]] = field(default_factory=list)


def placements(r: Resource) -> Iterator[Placement]:
    """Every pod placement an object, Helm release or EKS add-on declares."""
    if r.type == HELM_RELEASE:
        yield from _walk(r.inputs.get("values") or {}, "values", holder="nodeSelector")
    elif r.type == EKS_ADDON:
        text = r.inputs.get("configurationValues")
        if isinstance(text, str) and text.startswith("{"):
            yield from _walk(json.loads(text), "configurationValues", holder="nodeSelector")
    elif r.type.startswith("kubernetes:"):
        yield from _walk(r.inputs, "", holder="containers")


def _walk(value: Any, path: str, holder: str) -> Iterator[Placement]:
    if isinstance(value, dict):
        if holder in value:
            required = (((value.get("affinity") or {}).get("nodeAffinity") or {})
                        .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
            terms = [list(t.get("matchExpressions") or [])
                     for t in required.get("nodeSelectorTerms") or []]
            yield Placement(path or ".", dict(value.get("nodeSelector") or {}),
                            list(value.get("tolerations") or []), terms)
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}", holder)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]", holder)


def node_order_problems(rendered: Rendered) -> list[str]:
    graph = rendered.graph()
    sources = node_sources(graph)
    problems = []
    for urn, r in graph.nodes.items():
        if not (r.type in (HELM_RELEASE, EKS_ADDON) or r.type.startswith("kubernetes:")):
            continue
        found = list(placements(r))
        if r.type == HELM_RELEASE and not found:
            release = r.inputs.get("name", r.name)
            if release not in NO_POD_PLACEMENT:
                problems.append(
                    f"{label(urn)}: Helm release {release!r} sets no nodeSelector anywhere in "
                    f"its values, so nothing says which nodes its pods need (system node "
                    f"group? a GPU pool?). Place its pods (e.g. infra.labels."
                    f"system_scheduling()) or list it in NO_POD_PLACEMENT with the reason."
                )
            continue
        waits = graph.waits_for(urn)
        for p in found:
            ok = eligible(sources, p.selector, p.tolerations, p.affinity_terms)
            if not ok:
                problems.append(
                    f"{label(urn)} at {p.where}: nodeSelector {p.selector}, node affinity "
                    f"{p.affinity_terms} and tolerations {p.tolerations} match no node group "
                    f"or NodePool this stack creates "
                    f"(sources: {', '.join(label(s.urn) for s in sources)})."
                )
            elif not any(s.urn in waits for s in ok):
                problems.append(
                    f"{label(urn)} at {p.where}: its pods need nodes from "
                    f"{' or '.join(label(s.urn) for s in ok)}, but it does not wait for any of "
                    f"them. Add depends_on=[...] (the system node group: `cluster.node_group`; "
                    f"a Karpenter pool: `karpenter.node_pools[name]`), so that `pulumi up` "
                    f"creates the nodes first and `pulumi destroy` removes the pods first."
                )
    return problems
