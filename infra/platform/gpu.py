"""GPU enablement: the NVIDIA device plugin (where the AMI lacks one) and the DCGM exporter.

Both run only on GPU nodes (the pools' node-class label) and tolerate the GPU taint. The
exporter's pods carry `SCRAPE_LABEL` so the observability stack can select them with a
PodMonitor; the chart's own ServiceMonitor is off because its CRD arrives with that stack (and it
would drop the GPU user's pod labels: honorLabels false).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import labels, versions
from infra.component import register_declared_outputs
from infra.config.karpenter import GpuAmiFamily
from infra.helm import pinned_release

NAMESPACE = "nvidia"
DCGM_SCRAPE_VALUE = "dcgm-exporter"
DCGM_PORT_NAME = "metrics"
DCGM_PORT = 9400
OLD_TYPE = "llm-platform:aws:GpuEnablement"
# Labels of the pod USING a GPU that the exporter copies onto that GPU's series, so GPU series
# group by Ray cluster without a join. Matched on the label key, then sanitised (ray.io/cluster
# -> ray_io_cluster); the chart joins the list with "," into an env var, so no commas here
# (NVIDIA/dcgm-exporter tag 4.5.3-4.8.2: deployment/templates/daemonset.yaml,
# internal/pkg/transformation/kubernetes.go).
DCGM_POD_LABEL_ALLOWLIST = (r"^ray\.io/(cluster|node-type|group)$",)


def _gpu_only() -> dict[str, Any]:
    return {
        "nodeSelector": {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_GPU},
        "tolerations": [dict(labels.GPU_TOLERATION)],
    }


def needs_device_plugin(gpu_ami_family: GpuAmiFamily) -> bool:
    """Bottlerocket's NVIDIA variants run the device plugin themselves; AL2023 does not."""
    return gpu_ami_family == "al2023-nvidia"


def device_plugin_values() -> dict[str, Any]:
    image = versions.NVIDIA_DEVICE_PLUGIN_IMAGE
    return {
        "image": {"repository": image.repository, "tag": image.tag},
        **_gpu_only(),
        # The chart's default affinity also requires `nvidia.com/gpu.present=true`, which
        # the GPU NodePools set; both must hold, so a mislabelled node fails loudly.
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }


def dcgm_exporter_values() -> dict[str, Any]:
    image = versions.DCGM_EXPORTER_IMAGE
    return {
        "image": {"repository": image.repository, "tag": image.tag},
        **_gpu_only(),
        "podLabels": {labels.SCRAPE_LABEL: DCGM_SCRAPE_VALUE},
        # Scraped by infra/platform/monitoring.py's PodMonitor (with honorLabels), created after the
        # monitoring CRDs; the chart's ServiceMonitor would need them before this release.
        "serviceMonitor": {"enabled": False},
        "service": {"enable": True, "port": DCGM_PORT},
        # dcgm-exporter chart 4.8.2 values.yaml `kubernetes`: the chart also creates the
        # ClusterRole to read pods (`kubernetes.rbac.create`, default true).
        "kubernetes": {
            "enablePodLabels": True,
            "podLabelAllowlistRegex": list(DCGM_POD_LABEL_ALLOWLIST),
        },
    }


class GpuEnablement(pulumi.ComponentResource):
    """NVIDIA device plugin + DCGM exporter, on the GPU nodes."""

    namespace: str
    releases: dict[str, k8s.helm.v3.Release]  # "device-plugin" (if needed), "dcgm-exporter"

    def __init__(
        self,
        name: str,
        *,
        gpu_ami_family: GpuAmiFamily,
        provider: k8s.Provider,
        # The GPU NodePools these DaemonSets run on (created first, removed last).
        gpu_node_pools: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # Was typed llm-platform:aws:GpuEnablement; the alias keeps existing stacks' resources.
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=OLD_TYPE)])
        )
        super().__init__("llm-platform:k8s:GpuEnablement", name, None, opts)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=provider)
        ns = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": NAMESPACE}, opts=k8s_child
        )
        # After the GPU NodePools their pods run on: on destroy, removed before the pools.
        in_ns = pulumi.ResourceOptions.merge(
            k8s_child, pulumi.ResourceOptions(depends_on=[ns, *gpu_node_pools])
        )
        self.namespace = NAMESPACE
        self.releases = {}
        if needs_device_plugin(gpu_ami_family):
            self.releases["device-plugin"] = pinned_release(
                f"{name}-device-plugin", release_name="nvidia-device-plugin",
                chart=versions.NVIDIA_DEVICE_PLUGIN_CHART, namespace=NAMESPACE,
                values=device_plugin_values(), opts=in_ns,
            )
        self.releases["dcgm-exporter"] = pinned_release(
            f"{name}-dcgm-exporter", release_name="dcgm-exporter",
            chart=versions.DCGM_EXPORTER_CHART, namespace=NAMESPACE,
            values=dcgm_exporter_values(), opts=in_ns,
        )
        register_declared_outputs(self)

