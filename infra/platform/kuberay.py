"""KubeRay operator: the pinned `kuberay-operator` Helm chart (1.7.0, with its CRDs) on the system
nodes.

Every feature gate is set explicitly, so a chart bump cannot switch one on or off unnoticed. The
operator's metrics are on, served by the chart's Service (`kuberay-operator:8080`) and scraped
through the chart's own ServiceMonitor, whose CRD the monitoring release installs (so this
release comes after it).

Teardown order (Pulumi destroys in reverse dependency order): the RayService goes first (it
depends on this release), then the operator, then Karpenter's controller (this release depends on
it), so Karpenter is still running to drain the GPU nodes the Ray pods leave behind.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import labels, versions
from infra.component import register_declared_outputs
from infra.helm import pinned_release

NAMESPACE = "kuberay-system"
RELEASE_NAME = "kuberay-operator"
METRICS_PORT = 8080

# Feature gates of chart 1.7.0 (values.yaml `featureGates`), each decided here, not inherited.
FEATURE_GATES: dict[str, bool] = {
    "RayClusterStatusConditions": True,  # RayService readiness reads these conditions
    "RayJobDeletionPolicy": True,  # chart default; no RayJobs here
    "RayMultiHostIndexing": True,  # chart default; labels multi-host worker replicas
    # Needs a Gateway API controller, which this platform does not install: see the README's
    # upgrade strategies.
    "RayServiceIncrementalUpgrade": False,
    "RayCronJob": False,
    "RayClusterMTLS": False,
    # NetworkPolicies for Ray pods are plain Kubernetes objects selected by our own labels.
    "RayClusterNetworkPolicy": False,
    "RayClusterHistoryServer": False,
}


def operator_values() -> dict[str, Any]:
    """Helm values of the operator chart: system nodes, pinned image, explicit gates, metrics."""
    image = versions.KUBERAY_OPERATOR_IMAGE
    sched = labels.system_scheduling()
    return {
        "image": {"repository": image.repository, "tag": image.tag},
        "nodeSelector": sched["nodeSelector"],
        "tolerations": sched["tolerations"],
        "featureGates": [{"name": n, "enabled": on} for n, on in FEATURE_GATES.items()],
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}},
        "service": {"type": "ClusterIP", "port": METRICS_PORT},
        "leaderElectionEnabled": True,
        # Requests == limits: the operator reconciles every Ray pod; it must not be evicted.
        "resources": {
            "requests": {"cpu": "200m", "memory": "512Mi"},
            "limits": {"cpu": "200m", "memory": "512Mi"},
        },
    }


class KubeRay(pulumi.ComponentResource):
    """The KubeRay operator (its chart installs the ray.io CRDs)."""

    namespace: str
    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        *,
        provider: k8s.Provider,
        after: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: what the operator must come after and outlive on teardown: Karpenter's
        controller (still there to drain the nodes of the Ray pods the operator deletes) and the
        monitoring release (its ServiceMonitor CRD)."""
        super().__init__("llm-platform:k8s:KubeRay", name, None, opts)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=provider)
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata={"name": NAMESPACE}, opts=k8s_child)
        self.release = pinned_release(
            f"{name}-operator",
            release_name=RELEASE_NAME,
            chart=versions.KUBERAY_OPERATOR_CHART,
            namespace=NAMESPACE,
            values=operator_values(),
            opts=pulumi.ResourceOptions.merge(
                k8s_child, pulumi.ResourceOptions(depends_on=[ns, *after])
            ),
        )
        self.namespace = NAMESPACE
        register_declared_outputs(self)
