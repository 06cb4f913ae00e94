"""NetworkPolicy evaluation with the semantics of the Amazon VPC CNI's network policy agent.

Kubernetes' own semantics treat a Service as transparent: a connection to a ClusterIP is judged
as one to the pod behind it. The VPC CNI agent does not (its eBPF programs sit on the pod's veth,
before kube-proxy translates the ClusterIP), so the AWS network policy controller resolves each
egress peer into addresses itself (aws/amazon-network-policy-controller-k8s,
pkg/resolvers/endpoints.go):

- an `ipBlock` peer allows its CIDR (minus `except`) and nothing else; a ClusterIP only if it
  happens to lie in the CIDR;
- a `podSelector`/`namespaceSelector` peer allows the IPs of the pods it selects and, for egress,
  the ClusterIP of every non-headless Service in the selected namespaces whose `spec.selector`
  the peer's podSelector matches (`getMatchingServiceClusterIPs`; a Service with no selector,
  like `default/kubernetes`, only for an empty podSelector);
- ingress is judged at the destination pod after translation, by the source pod's IP;
  traffic from the node's own IP (kubelet probes) is always allowed by the agent.

Why not network-config-analyzer (PyPI 2.1.0): it computes pod-to-pod connectivity with
Kubernetes' semantics, where a Service is resolved to its pods before any policy is applied; the
rule that decides defect 2 (egress to a ClusterIP needs a selector peer matching the Service's
selector) would have to be a second evaluator on top of it anyway, and it needs manifests of
every workload, most of which (KubeRay's pods, the charts' pods) are not in our render. This
module is that one evaluator, small enough to read against endpoints.go; the policies it reads
are the rendered ones.

Only what the platform's policies use is supported (matchLabels, numeric ports, TCP/UDP); a
matchExpressions selector or a named port raises, so a new policy shape cannot be misjudged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Labels
    ip: IPv4Address


@dataclass(frozen=True)
class Service:
    """`ports`: service port -> target (container) port."""

    name: str
    namespace: str
    selector: Labels | None
    cluster_ip: IPv4Address | None  # None: headless
    ports: Mapping[int, int]
    endpoints: tuple[Pod | Host, ...] = ()  # for a Service without selector


@dataclass(frozen=True)
class Host:
    """Anything that is not a pod: an AWS API, the internet, an ALB node, a node itself."""

    name: str
    ip: IPv4Address
    is_node: bool = False


Endpoint = Pod | Service | Host


@dataclass(frozen=True)
class Flow:
    """One connection: `source` opens TCP/UDP `port` on `target` (a Service: its port)."""

    name: str
    source: Pod | Host
    target: Endpoint
    port: int
    allowed: bool  # what the platform needs: True must pass, False must be refused
    protocol: str = "TCP"


@dataclass
class Cluster:
    namespaces: dict[str, Labels]
    pods: list[Pod] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)


class UnsupportedPolicyError(ValueError):
    pass


def _labels_match(selector: Mapping[str, Any] | None, labels: Labels) -> bool:
    """A LabelSelector (None or {} selects everything)."""
    if not selector:
        return True
    if selector.get("matchExpressions"):
        raise UnsupportedPolicyError(f"matchExpressions in {selector}")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _port_ok(rule_ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        if not isinstance(p["port"], int):
            raise UnsupportedPolicyError(f"named port {p['port']!r}")
        if p["port"] <= port <= p.get("endPort", p["port"]):
            return True
    return False


def _in_block(block: Mapping[str, Any], ip: IPv4Address) -> bool:
    return ip in ip_network(block["cidr"]) and not any(
        ip in ip_network(e) for e in block.get("except", [])
    )


def _peer_namespaces(cluster: Cluster, peer: Mapping[str, Any], own: str) -> list[str]:
    if "namespaceSelector" not in peer:
        return [own]
    return [n for n, labels in cluster.namespaces.items()
            if _labels_match(peer["namespaceSelector"], labels)]


def _selecting(cluster: Cluster, pod: Pod, kind: str) -> list[dict[str, Any]]:
    return [
        p for p in cluster.policies
        if p["metadata"]["namespace"] == pod.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and _labels_match(p["spec"].get("podSelector"), pod.labels)
    ]


def _backends(cluster: Cluster, svc: Service) -> list[Pod | Host]:
    if svc.selector is None:
        return list(svc.endpoints)
    return [p for p in cluster.pods
            if p.namespace == svc.namespace and _labels_match({"matchLabels": svc.selector},
                                                              p.labels)]


def egress_allowed(cluster: Cluster, flow: Flow) -> tuple[bool, str]:
    """The source pod's egress verdict, on the address it actually sends to (a ClusterIP when
    the target is a non-headless Service)."""
    src = flow.source
    if not isinstance(src, Pod):
        return True, "not a pod"
    policies = _selecting(cluster, src, "Egress")
    if not policies:
        return True, "no egress policy selects the source"
    tgt = flow.target
    for pol in policies:
        for rule in pol["spec"].get("egress") or []:
            if not _port_ok(rule.get("ports"), flow.port, flow.protocol):
                continue
            peers = rule.get("to")
            if not peers:
                return True, f"{pol['metadata']['name']}: rule without peers"
            for peer in peers:
                if _egress_peer_matches(cluster, pol, peer, tgt):
                    return True, f"{pol['metadata']['name']}: {peer}"
    return False, f"no egress rule of {[p['metadata']['name'] for p in policies]} allows it"


def _egress_peer_matches(
    cluster: Cluster, pol: dict[str, Any], peer: Mapping[str, Any], tgt: Endpoint
) -> bool:
    if "ipBlock" in peer:
        if isinstance(tgt, Service):
            # Only the ClusterIP is seen on the veth; a headless Service is its pods' IPs.
            if tgt.cluster_ip is not None:
                return _in_block(peer["ipBlock"], tgt.cluster_ip)
            return any(_in_block(peer["ipBlock"], b.ip) for b in _backends(cluster, tgt))
        return _in_block(peer["ipBlock"], tgt.ip)
    namespaces = _peer_namespaces(cluster, peer, pol["metadata"]["namespace"])
    selector = peer.get("podSelector")
    if isinstance(tgt, Pod):
        return tgt.namespace in namespaces and _labels_match(selector, tgt.labels)
    if isinstance(tgt, Service):
        if tgt.cluster_ip is None:
            return any(isinstance(b, Pod) and b.namespace in namespaces
                       and _labels_match(selector, b.labels) for b in _backends(cluster, tgt))
        # getMatchingServiceClusterIPs: the peer's podSelector must match the Service's selector
        # (as a label set); a Service without selector counts as an empty set.
        return tgt.namespace in namespaces and _labels_match(selector, tgt.selector or {})
    return False  # a selector never names an address outside the cluster


def ingress_allowed(cluster: Cluster, flow: Flow, dst: Pod, port: int) -> tuple[bool, str]:
    """The destination pod's ingress verdict on the translated connection."""
    src = flow.source
    if isinstance(src, Host) and src.is_node:
        return True, "from the node itself (always allowed by the agent)"
    policies = _selecting(cluster, dst, "Ingress")
    if not policies:
        return True, "no ingress policy selects the target"
    for pol in policies:
        for rule in pol["spec"].get("ingress") or []:
            if not _port_ok(rule.get("ports"), port, flow.protocol):
                continue
            peers = rule.get("from")
            if not peers:
                return True, f"{pol['metadata']['name']}: rule without peers"
            for peer in peers:
                if "ipBlock" in peer:
                    if _in_block(peer["ipBlock"], src.ip):
                        return True, f"{pol['metadata']['name']}: {peer}"
                    continue
                namespaces = _peer_namespaces(cluster, peer, dst.namespace)
                if isinstance(src, Pod) and src.namespace in namespaces and _labels_match(
                        peer.get("podSelector"), src.labels):
                    return True, f"{pol['metadata']['name']}: {peer}"
    return False, f"no ingress rule of {[p['metadata']['name'] for p in policies]} allows it"


def verdict(cluster: Cluster, flow: Flow) -> tuple[bool, str]:
    """Whether the connection gets through, and why (or why not)."""
    ok, why = egress_allowed(cluster, flow)
    if not ok:
        return False, f"egress: {why}"
    tgt = flow.target
    if isinstance(tgt, Host):
        return True, f"egress: {why}"
    if isinstance(tgt, Pod):
        targets = [(tgt, flow.port)]
    else:
        backends = [b for b in _backends(cluster, tgt) if isinstance(b, Pod)]
        if not backends:
            return True, f"egress: {why}; no pod behind {tgt.name}"
        targets = [(b, tgt.ports[flow.port]) for b in backends]
    results = [ingress_allowed(cluster, flow, pod, port) for pod, port in targets]
    if all(ok for ok, _ in results):
        return True, f"egress: {why}; ingress: {results[0][1]}"
    return False, "ingress: " + "; ".join(w for ok, w in results if not ok)


def problems(cluster: Cluster, flows: Iterable[Flow]) -> list[str]:
    """Every flow whose verdict differs from what the platform needs, with the reason."""
    out = []
    for f in flows:
        ok, why = verdict(cluster, f)
        if ok != f.allowed:
            need = "needed but refused" if f.allowed else "must be refused but passes"
            out.append(f"{f.name} ({f.protocol}/{f.port}): {need}: {why}")
    return out


def ip(text: str) -> IPv4Address:
    addr = ip_address(text)
    assert isinstance(addr, IPv4Address)
    return addr


def host_in(network: IPv4Network, index: int) -> IPv4Address:
    """The `index`-th address of a network (deterministic test addresses)."""
    return network.network_address + index
