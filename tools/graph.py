"""The creation-order graph of an offline render: which resource waits for which.

Pulumi creates a resource only after every resource it waits for exists. A resource waits for:
- its dependencies: the explicit `depends_on` option AND every resource whose Output it takes
  as an input (the SDK derives these and sends them as the RegisterResource `dependencies`,
  with the input that carried each one in `propertyDependencies`);
- its provider (a Kubernetes provider built from the cluster's kubeconfig waits for the
  cluster, and so does everything that uses the provider);
- its parent, when that parent is a custom resource or a multi-language (remote) component
  such as pulumi-eks' `Cluster`: the child's registration needs the parent's URN, which
  those return only once they exist. A local component's URN is known at once, so a local
  component parent adds no wait.

A plain string never carries a dependency: `cluster_name="llm-platform-prod"` lets the
resource be sent before the cluster exists, while `cluster_name=eks_cluster.name` waits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tools.mocks import Resource


@dataclass(frozen=True)
class Edge:
    """`source` waits for `target`; `why` says through what (an input, an option, ...)."""

    source: str
    target: str
    why: str


@dataclass
class Graph:
    nodes: dict[str, Resource]
    edges: dict[str, list[Edge]] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: list[Resource]) -> Graph:
        nodes = {r.urn: r for r in resources}
        graph = cls(nodes)
        for r in resources:
            out: list[Edge] = []
            carried: dict[str, list[str]] = {}
            for key, urns in r.property_dependencies.items():
                for urn in urns:
                    carried.setdefault(urn, []).append(key)
            for urn in r.depends_on:
                keys = carried.get(urn)
                why = f"input {', '.join(sorted(keys))}" if keys else "depends_on option"
                out.append(Edge(r.urn, urn, why))
            if r.provider:
                out.append(Edge(r.urn, provider_urn(r.provider), "provider"))
            parent = nodes.get(r.parent)
            if parent is not None and (parent.custom or parent.remote):
                out.append(Edge(r.urn, parent.urn, "parent"))
            graph.edges[r.urn] = out
        return graph

    def waits_for(self, urn: str) -> dict[str, list[Edge]]:
        """Every resource `urn` waits for, directly or not, each with one path of edges."""
        paths: dict[str, list[Edge]] = {}
        queue: deque[tuple[str, list[Edge]]] = deque([(urn, [])])
        seen = {urn}
        while queue:
            current, path = queue.popleft()
            for edge in self.edges.get(current, []):
                if edge.target in seen:
                    continue
                seen.add(edge.target)
                paths[edge.target] = [*path, edge]
                queue.append((edge.target, paths[edge.target]))
        return paths

    def to_json(self) -> dict[str, Any]:
        """Per resource (by URN): type, name, parent and what it waits for, and why."""
        return {
            urn: {
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "remote": r.remote,
                "provider": provider_urn(r.provider) if r.provider else "",
                "waitsFor": sorted(
                    ({"urn": e.target, "why": e.why} for e in self.edges.get(urn, [])),
                    key=lambda e: (e["urn"], e["why"]),
                ),
            }
            for urn, r in sorted(self.nodes.items())
        }


def provider_urn(reference: str) -> str:
    """A provider reference is `<urn>::<id>`; the URN is what the graph keys on."""
    return reference.rsplit("::", 1)[0]


def label(urn: str) -> str:
    """`name (type)` from a URN, for messages people read."""
    parts = urn.split("::")
    typ = parts[-2].rsplit("$", 1)[-1] if len(parts) >= 2 else "?"
    return f"{parts[-1]} ({typ})"


def describe_path(path: list[Edge]) -> str:
    return " -> ".join([label(path[0].source)] + [f"[{e.why}] {label(e.target)}" for e in path])
