"""Every Helm chart and container image the AWS foundation installs, pinned in one place.

Bumping a version is a one-line change here, reviewed like code; nothing floats to "latest".
EKS managed add-on versions live in the stack config (`cluster.addonVersions`) because they
must follow the cluster's Kubernetes version, which is per stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """A Helm chart: `chart` is a name in `repo`, or a full `oci://` reference (repo None)."""

    chart: str
    version: str
    repo: str | None = None


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    digest: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


# Karpenter: the CRDs and the controller are separate releases so that CRD upgrades are
# explicit and the controller can be removed before its CRDs on teardown.
KARPENTER_VERSION = "1.14.1"
KARPENTER_CRD_CHART = Chart("oci://public.ecr.aws/karpenter/karpenter-crd", KARPENTER_VERSION)
KARPENTER_CHART = Chart("oci://public.ecr.aws/karpenter/karpenter", KARPENTER_VERSION)
KARPENTER_IMAGE = Image(
    "public.ecr.aws/karpenter/controller",
    KARPENTER_VERSION,
    # The digest the 1.14.1 chart itself pins: aws/karpenter-provider-aws, branch
    # release-v1.14.1 (commit c88abbbad455), charts/karpenter/values.yaml, controller.image.digest
    # (the tag v1.14.1 still carries the 1.13.0 values; the release bot sets them after the tag).
    # A test checks it against ../shared/upstream/karpenter-1.14.1_values.yaml.
    "sha256:445baefaaa689029cc12ac1f659b916b0b82fb14308ce536f8521fcf079116fa",
)

# NVIDIA device plugin: needed on the EKS AL2023 NVIDIA AMI; Bottlerocket NVIDIA ships its own.
NVIDIA_DEVICE_PLUGIN_CHART = Chart(
    "nvidia-device-plugin", "0.20.0", "https://nvidia.github.io/k8s-device-plugin"
)
NVIDIA_DEVICE_PLUGIN_IMAGE = Image("nvcr.io/nvidia/k8s-device-plugin", "v0.20.0")

# DCGM exporter: per-GPU metrics (utilisation, memory, temperature, XID errors).
DCGM_EXPORTER_CHART = Chart(
    "dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts"
)
DCGM_EXPORTER_IMAGE = Image("nvcr.io/nvidia/k8s/dcgm-exporter", "4.5.3-4.8.2-distroless")

# kube-prometheus-stack: Prometheus Operator v0.93.1 (its CRDs), Prometheus, Alertmanager, Grafana
# (chart 12.11.1), kube-state-metrics (chart 8.4.0), node-exporter. The chart pins every image tag
# (prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3, values.yaml).
KUBE_PROMETHEUS_STACK_CHART = Chart(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts"
)
# AWS Load Balancer Controller: the optional ALB in front of Ray Serve. Chart 3.5.0 ships app
# v3.5.0 (kubernetes-sigs/aws-load-balancer-controller tag v3.5.0, helm/.../Chart.yaml and
# values.yaml `image.tag`); its Helm repository is the eks-charts one.
AWS_LB_CONTROLLER_CHART = Chart(
    "aws-load-balancer-controller", "3.5.0", "https://aws.github.io/eks-charts"
)
AWS_LB_CONTROLLER_IMAGE = Image("public.ecr.aws/eks/aws-load-balancer-controller", "v3.5.0")
# KubeRay: operator chart 1.7.0 (ray-project/kuberay tag v1.7.0, helm-chart/kuberay-operator;
# Chart.yaml `version: 1.7.0`, values.yaml `image.tag: v1.7.0`). The CRDs come with the chart.
KUBERAY_VERSION = "1.7.0"
KUBERAY_OPERATOR_CHART = Chart(
    "kuberay-operator", KUBERAY_VERSION, "https://ray-project.github.io/kuberay-helm/"
)
KUBERAY_OPERATOR_IMAGE = Image("quay.io/kuberay/operator", f"v{KUBERAY_VERSION}")

# Ray on the cluster: the same release as `ray[serve]==2.60.0` in requirements-dev.txt, so the
# serveConfigV2 that CI deploys locally is read by the same Serve. Official image scheme
# `rayproject/ray-llm:<ray>-py312-cu130` (Python 3.12, CUDA 13.0; ray-project/ray PR #61497 added
# the cu130 ray-llm images). Seen on Docker Hub for 2.56.0-2.59.0 in public manifests; the 2.60.0
# tag could not be read offline (no registry access here): `docker manifest inspect` it and add
# the digest before the first `pulumi up`. CUDA 13.0 needs an NVIDIA driver of branch R580 or
# newer on the node: the EKS AL2023 NVIDIA AMIs moved to R580 in Oct-Nov 2025
# (awslabs/amazon-eks-ami#2470, backports #2484-#2509), so the pinned AMI (v2026xxxx) has it;
# check with `nvidia-smi` on a GPU node after an AMI bump (see docs/rayservice.md).
RAY_VERSION = "2.60.0"
RAY_LLM_IMAGE = Image("rayproject/ray-llm", f"{RAY_VERSION}-py312-cu130")

# GCS fault-tolerance Redis for dev (staging/prod use ElastiCache). 7.2 is the last BSD-licensed
# line; tag read from docker-library/official-images `library/redis` at commit 37079fb3
# (2026-08-21). No digest: none could be read offline; pin one with `docker buildx imagetools
# inspect redis:7.2.16-alpine` before relying on it beyond dev.
REDIS_IMAGE = Image("docker.io/library/redis", "7.2.16-alpine")

ALL_CHARTS: tuple[Chart, ...] = (
    KARPENTER_CRD_CHART,
    KARPENTER_CHART,
    NVIDIA_DEVICE_PLUGIN_CHART,
    DCGM_EXPORTER_CHART,
    KUBE_PROMETHEUS_STACK_CHART,
    AWS_LB_CONTROLLER_CHART,
    KUBERAY_OPERATOR_CHART,
)
ALL_IMAGES: tuple[Image, ...] = (
    KARPENTER_IMAGE,
    NVIDIA_DEVICE_PLUGIN_IMAGE,
    DCGM_EXPORTER_IMAGE,
    AWS_LB_CONTROLLER_IMAGE,
    KUBERAY_OPERATOR_IMAGE,
    RAY_LLM_IMAGE,
    REDIS_IMAGE,
)
