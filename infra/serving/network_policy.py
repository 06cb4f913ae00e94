"""NetworkPolicies for the Ray pods: each Ray port open only to what needs it.

Kubernetes allows everything to a pod that no policy selects; once one policy selects it, only
what some policy allows gets through (in each direction listed in `policyTypes`). Every policy
here selects the Ray pods (`ray.io/is-ray-node: "yes"`, set by KubeRay on head and workers,
kuberay v1.7.0 ray-operator/controllers/ray/utils/constant.go), so together they are the whole
allow-list:

- Ray pods among themselves, every port: GCS 6379, raylet, object manager, the dashboard agent
  and the worker ports are dynamic, and a blocked one shows up as a worker that never turns Ready
  (kuberay#3467: a deny-all policy on EKS without these rules).
- The KubeRay operator to the dashboard port 8265 (it deploys and polls serveConfigV2 there).
- Prometheus to the metrics port 8080.
- Serve 8000 from the VPC's ranges: the ALB (target type ip: its nodes connect from the VPC's
  subnets to the pod IPs) and in-cluster or in-VPC clients; every call there still needs a key.
- Egress: DNS to CoreDNS; HTTPS 443 anywhere (S3, STS and the other AWS APIs, the Kubernetes API
  for the autoscaler, the Hugging Face Hub): these have no fixed addresses a policy could name;
  the EKS Pod Identity agent on the node (169.254.170.23:80) for AWS credentials; Redis 6379 in
  the VPC (GCS fault tolerance on ElastiCache or an external Redis) and, with the in-cluster
  Redis (dev), to that Redis by pod selector.
- The in-cluster Redis itself: 6379 from the Ray pods only, nothing else in or out.

Why a selector peer for the in-cluster Redis and not the VPC's CIDR: the VPC CNI's network policy
agent enforces egress on the pod's veth, before kube-proxy translates a Service's ClusterIP, and
the AWS network policy controller adds a Service's ClusterIP to the allow list only for
podSelector/namespaceSelector peers that match the Service's selector, never for ipBlock peers
(aws/amazon-network-policy-controller-k8s pkg/resolvers/endpoints.go,
getMatchingServiceClusterIPs; its issue #222; aws-network-policy-agent issue #549). The Service
range (172.20.0.0/16 or 10.100.0.0/16) is outside the VPC, so an ipBlock of the VPC never covers
the Redis Service. 443 to 0.0.0.0/0 does cover the `kubernetes` Service's ClusterIP, which is how
the autoscaler reaches the API server. tests/render/test_flow_matrix.py evaluates every needed and
every forbidden connection with these semantics.

Why our own objects and not the RayCluster's `networkPolicy` field (alpha in KubeRay 1.7, behind
the RayClusterNetworkPolicy gate): that field lives in `rayClusterConfig`, so changing one rule
would start a whole new Ray cluster; separate NetworkPolicies change in place.

On EKS these are enforced only with the VPC CNI's network policy agent switched on (the cluster's
vpc-cni add-on configuration, owned by infra/foundation/cluster.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.component import register_declared_outputs
from infra.config.network import NetworkConfig
from infra.serving.exposure import INTERNAL_RAY_PORTS, SERVE_PORT

RAY_POD = {"ray.io/is-ray-node": "yes"}
OPERATOR_POD = {"app.kubernetes.io/name": "kuberay-operator"}
DNS_POD = {"k8s-app": "kube-dns"}
# EKS Pod Identity agent: a host-network DaemonSet answering on this link-local address.
POD_IDENTITY_AGENT = "169.254.170.23/32"
REDIS_PORT = 6379
NS_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server


def vpc_ranges(network: NetworkConfig) -> list[IPv4Network]:
    """Every address in the VPC: its primary range and the pods' secondary range, if any."""
    return [network.vpc_cidr, *([network.pod_cidr] if network.pod_cidr else [])]


def _in_namespace(namespace: str, pods: dict[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NS_LABEL: namespace}}}
    if pods is not None:
        peer["podSelector"] = {"matchLabels": pods}
    return peer


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": RAY_POD}, **spec},
    }


def ray_network_policies(
    *,
    namespace: str,
    operator_namespace: str,
    prometheus_namespace: str,
    vpc_cidrs: list[IPv4Network],
    redis_pods: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The NetworkPolicies of the Ray pods in `namespace` (see the module docstring);
    `redis_pods`: the in-cluster Redis pods' labels (the Redis Service's selector), if any."""
    ray_peer = {"podSelector": {"matchLabels": RAY_POD}}
    vpc = [{"ipBlock": {"cidr": str(c)}} for c in vpc_cidrs]
    redis_egress = []
    if redis_pods:
        redis_egress = [{"to": [{"podSelector": {"matchLabels": dict(redis_pods)}}],
                         "ports": _tcp(REDIS_PORT)}]
    return [
        _policy("ray-internal", namespace, {
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [ray_peer]}],
            "egress": [{"to": [ray_peer]}],
        }),
        _policy("ray-dashboard-from-operator", namespace, {
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [_in_namespace(operator_namespace, OPERATOR_POD)],
                "ports": _tcp(INTERNAL_RAY_PORTS["dashboard"]),
            }],
        }),
        _policy("ray-metrics-from-prometheus", namespace, {
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [_in_namespace(prometheus_namespace)],
                "ports": _tcp(INTERNAL_RAY_PORTS["metrics"]),
            }],
        }),
        _policy("ray-serve-from-vpc", namespace, {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": vpc, "ports": _tcp(SERVE_PORT)}],
        }),
        _policy("ray-egress", namespace, {
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [_in_namespace("kube-system", DNS_POD)],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443)},
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": _tcp(80)},
                {"to": vpc, "ports": _tcp(REDIS_PORT)},
                *redis_egress,
            ],
        }),
    ]


def redis_network_policy(namespace: str, redis_pods: dict[str, str]) -> dict[str, Any]:
    """The in-cluster Redis: 6379 from the Ray pods of its namespace only; no egress (Redis
    opens no connections; replies to allowed connections pass, the agent tracks them)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "gcs-redis", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": dict(redis_pods)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": RAY_POD}}],
                         "ports": _tcp(REDIS_PORT)}],
            "egress": [],
        },
    }


class RayNetworkPolicies(pulumi.ComponentResource):
    """The Ray pods' NetworkPolicies. Output: `names`."""

    policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(
        self,
        name: str,
        *,
        provider: k8s.Provider,
        namespace: str,
        after: Sequence[pulumi.Resource],
        operator_namespace: str,
        prometheus_namespace: str,
        vpc_cidrs: list[IPv4Network],
        redis_pods: dict[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: the namespace; `redis_pods`: the in-cluster Redis pods' labels, if any.
        Pass `policies` to the RayService's `after`: they are in force
        before the first Ray pod starts and until the last one is gone."""
        super().__init__("llm-platform:k8s:RayNetworkPolicies", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(after))
        self.policies = []
        objs = ray_network_policies(
            namespace=namespace, operator_namespace=operator_namespace,
            prometheus_namespace=prometheus_namespace, vpc_cidrs=vpc_cidrs, redis_pods=redis_pods,
        )
        if redis_pods:
            objs.append(redis_network_policy(namespace, redis_pods))
        for obj in objs:
            self.policies.append(k8s.networking.v1.NetworkPolicy(
                f"{name}-{obj['metadata']['name']}", metadata=obj["metadata"], spec=obj["spec"],
                opts=k8s_opts,
            ))
        register_declared_outputs(self)
