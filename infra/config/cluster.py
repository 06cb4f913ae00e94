"""`cluster`: the EKS cluster and its system node group (infra/foundation/cluster.py)."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from serve_app.config import StrictModel

RoleArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")]


class AddonVersions(StrictModel):
    """EKS managed add-on versions for Kubernetes 1.36, pinned so a preview never shows drift.

    Where each was read (offline, 2026-11): kube-proxy and CoreDNS from the EKS User Guide's
    version tables (managing-kube-proxy, managing-coredns: the rows for 1.36). vpc-cni,
    eks-pod-identity-agent and aws-ebs-csi-driver follow the newest upstream releases (tags
    v1.23.0 of aws/amazon-vpc-cni-k8s, v1.64.0 of kubernetes-sigs/aws-ebs-csi-driver) with the
    eksbuild numbers published for 1.36 clusters; confirm each before a first deploy with
    `aws eks describe-addon-versions --kubernetes-version 1.36 --addon-name <name>`.
    """

    vpc_cni: str = Field("v1.23.0-eksbuild.1", description="Amazon VPC CNI add-on version.")
    coredns: str = Field("v1.14.3-eksbuild.3", description="CoreDNS add-on version.")
    kube_proxy: str = Field(
        "v1.36.0-eksbuild.14",
        description="kube-proxy add-on version; must match kubernetesVersion's minor.",
    )
    eks_pod_identity_agent: str = Field(
        "v1.3.10-eksbuild.3", description="EKS Pod Identity Agent add-on version."
    )
    aws_ebs_csi_driver: str = Field(
        "v1.64.0-eksbuild.1", description="Amazon EBS CSI driver add-on version."
    )


class NodeGroupConfig(StrictModel):
    instance_types: list[str] = Field(
        ["m7i.xlarge"], min_length=1, description="EC2 instance types of the system nodes."
    )
    min_size: int = Field(2, ge=1, description="Fewest system nodes.")
    desired_size: int = Field(
        2, ge=1, description="System nodes at creation (later changes are left to scaling)."
    )
    max_size: int = Field(4, ge=1, description="Most system nodes.")

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError("need minSize <= desiredSize <= maxSize")
        return self


LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]


class ClusterConfig(StrictModel):
    # 1.36: in EKS standard support (released on EKS in June 2026, 14 months of standard
    # support) and supported by Karpenter 1.14 (compatibility matrix, release-v1.14.1:
    # website/content/en/v1.14/upgrading/compatibility.md: 1.36 needs >= 1.13).
    kubernetes_version: str = Field(
        "1.36", pattern=r"^1\.[0-9]{2}$",
        description="Kubernetes minor version of the control plane and system nodes; bump "
        "together with addonVersions.",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "EXTENDED",
        description="What EKS does when kubernetesVersion leaves standard support: EXTENDED "
        "keeps it (extended-support surcharge per cluster-hour), STANDARD upgrades the "
        "control plane automatically (no surcharge).",
    )
    endpoint_access: Literal["private", "public"] = Field(
        "private", description="private: API reachable only from the VPC."
    )
    public_access_cidrs: list[IPv4Network] = Field(
        default_factory=list, description="Allow-list for a public endpoint (required then)."
    )
    api_access_cidrs: list[IPv4Network] = Field(
        default_factory=list,
        description="CIDRs (CI runner, VPN, peered network) given tcp/443 to the API on the "
        "cluster security group; with a private endpoint, this or apiAccessSecurityGroupIds "
        "is required, or `pulumi up` cannot reach the cluster.",
    )
    api_access_security_group_ids: list[
        Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]
    ] = Field(
        default_factory=list,
        description="Security groups (e.g. of a runner inside the VPC) given tcp/443 to the "
        "API on the cluster security group.",
    )
    admin_role_arns: list[RoleArn] = Field(
        default_factory=list, description="IAM roles given cluster admin (EKS access entries)."
    )
    read_only_role_arns: list[RoleArn] = Field(
        default_factory=list, description="IAM roles given read-only access (EKS access entries)."
    )
    addon_versions: AddonVersions = Field(
        default_factory=AddonVersions, description="Pinned EKS managed add-on versions."
    )
    system_node_group: NodeGroupConfig = Field(
        default_factory=NodeGroupConfig,
        description="On-demand node group for add-ons and operators (tainted CriticalAddonsOnly).",
    )
    log_types: list[LogType] = Field(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        description="EKS control-plane log types sent to CloudWatch.",
    )
    protect: bool = Field(True, description="Pulumi `protect` on the cluster.")

    @model_validator(mode="after")
    def _kube_proxy_follows_kubernetes(self) -> ClusterConfig:
        # kube-proxy must match the control plane's minor version; a stale pin breaks upgrades.
        want = f"v{self.kubernetes_version}."
        if not self.addon_versions.kube_proxy.startswith(want):
            raise ValueError(
                f"addonVersions.kubeProxy {self.addon_versions.kube_proxy} does not match "
                f"kubernetesVersion {self.kubernetes_version} (want {want}x-eksbuild.N)"
            )
        return self

    @field_validator("api_access_cidrs")
    @classmethod
    def _no_world_api_access(cls, v: list[IPv4Network]) -> list[IPv4Network]:
        if any(c.prefixlen == 0 for c in v):
            raise ValueError("must not contain 0.0.0.0/0")
        return v

    @property
    def has_api_access_source(self) -> bool:
        return bool(self.api_access_cidrs or self.api_access_security_group_ids)

    @model_validator(mode="after")
    def _public_needs_allow_list(self) -> ClusterConfig:
        if self.endpoint_access == "public":
            if not self.public_access_cidrs:
                raise ValueError("endpointAccess public needs a non-empty publicAccessCidrs")
            if any(c.prefixlen == 0 for c in self.public_access_cidrs):
                raise ValueError("publicAccessCidrs must not contain 0.0.0.0/0")
        return self


PROFILES = {
    "dev": {"protect": False, "systemNodeGroup": {"minSize": 1, "desiredSize": 2},
            "supportType": "STANDARD"},
    "staging": {"protect": False, "supportType": "STANDARD"},
    "prod": {"supportType": "EXTENDED"},
}
