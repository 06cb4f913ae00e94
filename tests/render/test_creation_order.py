"""Creation order at `pulumi up`, from each stack's dependency graph (tests/support/ordering.py).

The mocks accept any input at any time, so a resource sent before the cluster or the nodes it
needs exists renders fine and fails ten minutes into a real deploy. These tests walk what the
SDK records (explicit depends_on, dependencies derived from Output inputs, providers, parents)
for every resource of every stack, whoever declared it; the planted regressions below prove
that they catch the bug class through the real program.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi
import pytest

from infra.foundation.cluster import Cluster
from infra.foundation.karpenter import Karpenter
from tests.support.ordering import (
    EKS_ADDON,
    EKS_CLUSTER_TYPES,
    HELM_RELEASE,
    NODEPOOL,
    cluster_order_problems,
    node_order_problems,
    node_sources,
)
from tools.graph import Graph, label
from tools.mocks import Resource
from tools.render import STACKS, Rendered, render_stack, write

Render = Callable[[str], Rendered]


@pytest.mark.parametrize("stack", STACKS)
def test_everything_that_names_the_cluster_waits_for_it(stack: str, rendered: Render) -> None:
    problems = cluster_order_problems(rendered(stack))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_waits_for_the_nodes_it_selects(stack: str, rendered: Render) -> None:
    problems = node_order_problems(rendered(stack))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_the_checks_see_the_cluster_and_the_nodes(stack: str, rendered: Render) -> None:
    """Guards against a vacuous pass: the graph holds the EKS cluster, its child, the system
    node group and every NodePool, and the Karpenter objects are among the checked ones."""
    graph = rendered(stack).graph()
    types = {r.type for r in graph.nodes.values()}
    assert types >= EKS_CLUSTER_TYPES
    sources = {graph.nodes[s.urn].type for s in node_sources(graph)}
    assert sources == {"aws:eks/nodeGroup:NodeGroup", NODEPOOL}


@pytest.mark.parametrize("stack", STACKS)
def test_karpenter_waits_for_the_pod_identity_agent(stack: str, rendered: Render) -> None:
    # Karpenter exits at start when its EC2 dry run has no credentials.
    graph = rendered(stack).graph()
    (controller,) = [u for u, r in graph.nodes.items()
                     if r.type == HELM_RELEASE and r.inputs["name"] == "karpenter"]
    agents = [u for u, r in graph.nodes.items()
              if r.type == EKS_ADDON and r.inputs["addonName"] == "eks-pod-identity-agent"]
    assert agents and set(agents) <= graph.waits_for(controller).keys()


def test_render_writes_the_graph(rendered: Render, tmp_path: Path) -> None:
    r = rendered("prod")
    graph = json.loads((write(r, tmp_path) / "graph.json").read_text())
    access = next(v for v in graph.values() if v["type"] == "aws:eks/accessEntry:AccessEntry")
    why = {w["why"] for w in access["waitsFor"]}
    assert "input clusterName" in why, access


# ------------------------------------------------------------------------ planted regressions
@pytest.fixture
def cluster_name_as_plain_string(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bug this class of test exists for: `Cluster.name` built from the plain string."""
    original = Cluster.__init__

    def init(self: Cluster, name: str, *args: object, **kwargs: object) -> None:
        original(self, name, *args, **kwargs)  # type: ignore[arg-type]
        self.name = pulumi.Output.from_input(f"llm-platform-{pulumi.get_stack()}")

    monkeypatch.setattr(Cluster, "__init__", init)
    yield


@pytest.mark.usefixtures("cluster_name_as_plain_string")
def test_planted_plain_string_cluster_name_is_caught() -> None:
    problems = cluster_order_problems(render_stack("prod"))
    flagged = "\n".join(problems)
    for kind in ("AccessEntry", "PodIdentityAssociation"):
        assert f"{kind})" in flagged, flagged
    assert "clusterName is 'llm-platform-prod'" in flagged


@pytest.fixture
def gpu_daemonsets_not_waiting_for_gpu_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    original = Karpenter.__init__

    def init(self: Karpenter, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self.gpu_node_pools = []

    monkeypatch.setattr(Karpenter, "__init__", init)
    yield


@pytest.mark.usefixtures("gpu_daemonsets_not_waiting_for_gpu_pools")
def test_planted_missing_node_dependency_is_caught() -> None:
    problems = node_order_problems(render_stack("prod"))
    flagged = "\n".join(problems)
    assert "gpu-dcgm-exporter" in flagged and "does not wait for any of them" in flagged


# ------------------------------------------------------------------- the checks on small graphs
def _res(typ: str, rname: str, *, deps: tuple[str, ...] = (), provider: str = "",
         parent: str = "", custom: bool = True, **inputs: object) -> Resource:
    return Resource(type=typ, name=rname, urn=f"urn:pulumi:s::p::{typ}::{rname}", parent=parent,
                    custom=custom, inputs=dict(inputs), depends_on=list(deps),
                    provider=provider)


def test_waits_for_follows_providers_and_custom_parents_not_local_components() -> None:
    cluster = _res("aws:eks/cluster:Cluster", "c")
    prov = _res("pulumi:providers:kubernetes", "k", deps=(cluster.urn,))
    comp = _res("llm-platform:x:Comp", "comp", custom=False, deps=(cluster.urn,))
    obj = _res("kubernetes:core/v1:Namespace", "ns", provider=f"{prov.urn}::id", parent=comp.urn)
    loose = _res("aws:eks/addon:Addon", "a", parent=comp.urn, clusterName="c")
    graph = Graph.build([cluster, prov, comp, obj, loose])
    assert cluster.urn in graph.waits_for(obj.urn)
    # A local component's own dependencies do not hold back its children.
    assert cluster.urn not in graph.waits_for(loose.urn)
    assert label(loose.urn) == "a (aws:eks/addon:Addon)"


def test_a_selector_no_node_offers_is_reported() -> None:
    ng = _res("aws:eks/nodeGroup:NodeGroup", "sys", labels={"role": "system"},
              taints=[{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}])
    release = _res("kubernetes:helm.sh/v3:Release", "r", deps=(ng.urn,), name="r",
                   values={"nodeSelector": {"role": "system"}})  # no toleration
    problems = node_order_problems(Rendered("t", [ng, release]))
    assert len(problems) == 1 and "match no node group or NodePool" in problems[0]


def test_required_node_affinity_narrows_the_nodes() -> None:
    gpu = _res(NODEPOOL, "gpu", spec={"template": {
        "metadata": {"labels": {"pool": "gpu"}},
        "spec": {"requirements": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}}})
    cpu = _res(NODEPOOL, "cpu", spec={"template": {
        "metadata": {"labels": {"pool": "cpu"}}, "spec": {}}})
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["gpu"]},
            {"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    pod = _res("kubernetes:core/v1:Pod", "p", deps=(cpu.urn,),
               spec={"containers": [], "affinity": affinity})
    problems = node_order_problems(Rendered("t", [gpu, cpu, pod]))
    assert len(problems) == 1 and "gpu (kubernetes:karpenter.sh/v1:NodePool)" in problems[0]
