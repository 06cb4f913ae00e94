"""The typed stack configuration: one pydantic model of every `llm-platform:*` key.

Read once at start by `load()`. Environments differ only in their stack files; what a stack file
leaves out comes from the environment's profile below, so that `dev` is cheap and `prod` is safe.
A bad stack file raises `ConfigError` before any resource is declared, naming every bad key by its
full path (`llm-platform:gpuNodePools[1].limits.gpus: ...`).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from infra.capacity import cost
from infra.capacity.catalog import CATALOG, UnknownRegionError, instance_types
from serve_app.config import Name, ServingConfig, StrictModel

PROJECT = "llm-platform"

Environment = Literal["dev", "staging", "prod"]
CapacityType = Literal["spot", "on-demand"]
GpuAmiFamily = Literal["al2023-nvidia", "bottlerocket-nvidia"]
Duration = Annotated[str, Field(pattern=r"^([0-9]+(s|m|h))+$|^Never$")]
RoleArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]


def error_at(loc: tuple[str | int, ...], value: Any, message: str) -> ValidationError:
    """For a cross-field check in a validator of field F: an error reported at F.<loc> (the key
    that holds the bad value), not at F itself. Raise what it returns."""
    detail = InitErrorDetails(
        type=PydanticCustomError("value_error", message), loc=loc, input=value
    )
    return ValidationError.from_exception_data("StackConfig", [detail])


def secret(default: Any = None, **kw: Any) -> Any:
    """A field that must come from a Pulumi secret (`pulumi config set --secret`)."""
    return Field(default, json_schema_extra={"secret": True}, **kw)


# --------------------------------------------------------------------------------------- network
class NetworkConfig(StrictModel):
    vpc_cidr: IPv4Network = Field(IPv4Network("10.0.0.0/16"), description="VPC primary CIDR.")
    az_count: int = Field(3, ge=2, le=6, description="Availability zones to span.")
    nat_gateways: Literal["single", "perAz"] = Field(
        "perAz", description="One NAT gateway per AZ (resilient) or a single one (cheap)."
    )
    pod_cidr: IPv4Network | None = Field(
        None, description="Optional secondary VPC CIDR for pods (e.g. 100.64.0.0/16)."
    )
    interface_endpoints: list[Literal["ecr.api", "ecr.dkr", "sts", "sqs", "ec2"]] = Field(
        default_factory=list, description="Interface VPC endpoints to create."
    )
    flow_logs: bool = Field(True, description="VPC flow logs to CloudWatch.")
    flow_log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = Field(
        90, description="Days CloudWatch keeps the VPC flow logs."
    )

    @field_validator("vpc_cidr", "pod_cidr")
    @classmethod
    def _cidr_size(cls, v: IPv4Network | None) -> IPv4Network | None:
        if v is not None and not 16 <= v.prefixlen <= 20:
            raise ValueError(f"prefix length must be /16 to /20, got /{v.prefixlen}")
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> NetworkConfig:
        if self.pod_cidr is not None and self.pod_cidr.overlaps(self.vpc_cidr):
            raise ValueError(
                f"podCidr {self.pod_cidr} overlaps vpcCidr {self.vpc_cidr}; "
                "use a disjoint range such as 100.64.0.0/16"
            )
        return self


# --------------------------------------------------------------------------------------- cluster
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


# ------------------------------------------------------------------------------------- karpenter
class KarpenterConfig(StrictModel):
    gpu_ami_family: GpuAmiFamily = Field(
        "al2023-nvidia", description="GPU AMI family (Bottlerocket ships its own device plugin)."
    )
    gpu_ami_version: str | None = Field(
        None,
        pattern=r"^v[0-9]{8}$|^v[0-9]+\.[0-9]+\.[0-9]+$",
        description="Pinned AMI alias version (required in prod); unset means latest.",
    )
    root_volume_gib: int = Field(
        200, ge=100, le=16384, description="GiB of the GPU nodes' image volume (encrypted gp3)."
    )
    volume_iops: int = Field(
        6000, ge=3000, le=16000, description="gp3 IOPS of the GPU nodes' image volume."
    )
    volume_throughput: int = Field(
        500, ge=125, le=1000, description="gp3 throughput (MiB/s) of the GPU nodes' image volume."
    )
    image_cache_snapshot_id: str | None = Field(
        None, pattern=r"^snap-[0-9a-f]{8,17}$",
        description="EBS snapshot with the serving images pre-pulled, to cut cold starts.",
    )
    head_pool_cpu_limit: int = Field(64, gt=0, description="vCPU limit of the Ray head pool.")
    head_pool_instance_families: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]] = Field(
        ["m7i", "m6i"], min_length=1, max_length=10,
        description="EC2 instance families of the on-demand CPU pool for Ray head pods.",
    )

    @model_validator(mode="after")
    def _ami_version_matches_family(self) -> KarpenterConfig:
        # AL2023 aliases are dated (v20251108); Bottlerocket ones are semver (v1.50.0).
        v = self.gpu_ami_version
        if v is None:
            return self
        dated = len(v) == 9 and v[1:].isdigit()
        if self.gpu_ami_family == "al2023-nvidia" and not dated:
            raise ValueError(f"gpuAmiVersion {v} is not an AL2023 release (vYYYYMMDD)")
        if self.gpu_ami_family == "bottlerocket-nvidia" and dated:
            raise ValueError(f"gpuAmiVersion {v} is not a Bottlerocket release (vX.Y.Z)")
        return self


class GpuPoolLimits(StrictModel):
    gpus: int = Field(gt=0, description="Most GPUs this pool may run.")
    cpu: int | None = Field(
        None, gt=0,
        description="Most vCPUs this pool may run. Default: gpus x the most vCPUs per GPU among "
        "the pool's sizes (never binds before `gpus`; bounds a pool that could launch a "
        "GPU-less instance).",
    )
    memory_gib: int | None = Field(None, gt=0, description="Most memory (GiB) this pool may run.")


class GpuNodePoolConfig(StrictModel):
    name: DnsLabel = Field(description="NodePool name (a DNS label); pods select it by name.")
    family: str = Field(description="GPU instance family from infra/catalog.py (g6e, g5, p4d).")
    sizes: list[str] | None = Field(
        None, min_length=1,
        description="Instance sizes of the family (e.g. xlarge, 12xlarge); default: every size.",
    )
    capacity_types: list[CapacityType] = Field(
        ["on-demand"], min_length=1, description="Karpenter capacity types allowed."
    )
    limits: GpuPoolLimits = Field(description="Pool limits; `gpus` is required.")
    weight: int = Field(50, ge=1, le=100, description="Higher is tried first.")
    consolidate_after: Duration = Field(
        "30m", description="How long a node must be empty before Karpenter removes it."
    )
    # Karpenter's expiry is forceful (it ignores budgets): a default of Never keeps a busy GPU
    # node from being drained mid-request; node updates roll through drift instead.
    expire_after: Duration = Field("Never", description="Node lifetime before replacement.")
    disruption_budget: str = Field(
        "10%", pattern=r"^([0-9]+|[0-9]{1,3}%)$",
        description="Most nodes (count or %) Karpenter may disrupt at once.",
    )

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in CATALOG:
            raise ValueError(f"unknown GPU family {v!r}; allowed: {', '.join(sorted(CATALOG))}")
        return v

    @model_validator(mode="after")
    def _known_sizes(self) -> GpuNodePoolConfig:
        known = CATALOG[self.family]
        bad = [s for s in self.sizes or [] if s not in known]
        if bad:
            raise ValueError(
                f"sizes {bad} not in the {self.family} catalog; allowed: {', '.join(known)}"
            )
        return self


# ------------------------------------------------------------------------------------ monitoring
class MonitoringConfig(StrictModel):
    """kube-prometheus-stack sizing. Alert receivers come from the secret top-level keys
    `alertmanagerSlackWebhookUrl` / `alertmanagerWebhookUrl`: a stack without them pages no one."""

    prometheus_retention: str = Field(
        "15d", pattern=r"^[0-9]+(h|d|w|y)$",
        description="How long Prometheus keeps samples (Prometheus duration: h, d, w or y).",
    )
    prometheus_volume_gib: int = Field(
        50, ge=10, le=16384,
        description="GiB of each Prometheus replica's gp3 volume; Prometheus deletes the oldest "
        "blocks at 85% of it, whatever the retention.",
    )
    prometheus_memory_gib: int = Field(
        4, ge=1, le=256, description="GiB of memory each Prometheus replica requests (= limit)."
    )
    replicas: int = Field(
        1, ge=1, le=3, description="Replicas of Prometheus and of Alertmanager (2+ for HA)."
    )

# -------------------------------------------------------------------------------------- exposure
AcmCertificateArn = Annotated[
    str, Field(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$")
]


class AlbConfig(StrictModel):
    """An Application Load Balancer in front of the Serve port, through the AWS Load Balancer
    Controller (installed only when enabled). HTTPS only; API keys travel in headers."""

    enabled: bool = Field(False, description="Create the ALB (and install its controller).")
    scheme: Literal["internal", "internet-facing"] = Field(
        "internal", description="internal: reachable from the VPC (and peered networks) only."
    )
    allowed_cidrs: list[IPv4Network] = Field(
        default_factory=list, max_length=50,
        description="Source CIDRs the ALB accepts (its security group). Empty: the whole VPC"
        " for internal, anyone for internet-facing (refused when the API endpoint is private).",
    )
    certificate_arn: AcmCertificateArn | None = Field(
        None, description="ACM certificate for the HTTPS listener (required when enabled)."
    )
    idle_timeout_s: int = Field(
        600, ge=60, le=4000,
        description="Seconds the ALB keeps a connection with no bytes flowing: must cover the"
        " slowest non-streamed completion and the longest pause of a stream.",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", pattern=r"^ELBSecurityPolicy-[A-Za-z0-9-]+$",
        description="TLS policy of the HTTPS listener.",
    )
    deletion_protection: bool = Field(
        False, description="ALB deletion protection (the controller cannot delete it then)."
    )

    @model_validator(mode="after")
    def _https_needs_certificate(self) -> AlbConfig:
        if self.enabled and self.certificate_arn is None:
            raise error_at(
                ("certificateArn",), None,
                f"required when the ALB is enabled (scheme {self.scheme}): the listener is"
                " HTTPS only, API keys must not cross a network in clear text",
            )
        return self


class ExposureConfig(StrictModel):
    alb: AlbConfig = Field(default_factory=AlbConfig, description="Optional ALB to Ray Serve.")


# ----------------------------------------------------------------------------------- ray service
class RayPodSize(StrictModel):
    """CPU and memory of one Ray pod; requests equal limits (Guaranteed QoS)."""

    cpu: int = Field(gt=0, le=192, description="vCPUs per pod (requests == limits).")
    memory_gib: int = Field(gt=0, le=1536, description="Memory per pod, GiB (requests == limits).")


class RayServiceConfig(StrictModel):
    """The RayService: upgrade strategy, autoscaler, head and ingress-worker sizes, and the
    numbers that size the initializing timeout. GPU worker groups follow the GPU pools."""

    # The README's "Upgrade strategies" table gives the GPU cost of each.
    upgrade_strategy: Literal["NewCluster", "None"] = Field(
        "NewCluster",
        description=(
            "NewCluster: a cluster change starts a second full cluster and switches traffic when "
            "it is ready (zero downtime; extra GPUs while both run). None: cluster changes are "
            "not applied at all, only serveConfigV2 changes (no extra GPUs)."
        ),
    )
    autoscaler_idle_timeout_seconds: int = Field(
        600, ge=30, le=86_400,
        description="Seconds a Ray worker pod may sit idle before the autoscaler (v2) removes it.",
    )
    head: RayPodSize = Field(
        default_factory=lambda: RayPodSize(cpu=2, memory_gib=8),
        description="Head pod (GCS, Serve controller, dashboard); Ray tasks never run on it.",
    )
    ingress_workers: RayPodSize = Field(
        default_factory=lambda: RayPodSize(cpu=2, memory_gib=4),
        description="Each pod of the CPU worker group that runs the gateway's ingress replicas.",
    )
    startup_overhead_seconds: int = Field(
        600, ge=60, le=7200,
        description=(
            "Seconds from a replica's request to its engine loading weights: GPU node launch, "
            "image pull (the 11.6 GB ray-llm image took ~2 min on g6e.2xlarge), engine start. "
            "Sizes the initializing timeout."
        ),
    )
    weights_load_gib_per_second: float = Field(
        0.25, gt=0, le=100,
        description=(
            "GiB/s a replica loads its weights at (download + load to GPU); sizes the "
            "initializing timeout from the largest model."
        ),
    )


# ---------------------------------------------------------------------------------- model store
S3_BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
S3Uri = Annotated[str, Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$")]
KeyPrefix = Annotated[str, Field(pattern=r"^([A-Za-z0-9!_.*'()-]+/)+$")]
# runai_streamer streams safetensors from S3 into GPU memory; Ray Serve LLM then skips the
# download to local disk (ray/llm/_internal/common/utils/download_utils.py, Ray 2.60).
STREAMING_LOAD_FORMATS = ("runai_streamer", "runai_streamer_sharded")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def model_source_problem(source: str, store: ModelStoreConfig) -> str | None:
    """Why an `s3://` model source is not readable by the Ray pods' role, or None if it is (or
    is not an S3 source: Hugging Face ids and local paths need no grant)."""
    if not source.startswith("s3://"):
        return None
    bucket, key = split_s3_uri(source)
    folder = source if source.endswith("/") else source + "/"
    if bucket == store.bucket_name:
        if key.startswith(store.models_prefix):
            return None
        return (f"is in the stack's bucket but outside modelStore.modelsPrefix "
                f"{store.models_prefix!r}, which is all the Ray pods may read")
    if any(folder.startswith(grant) for grant in store.extra_read_grants):
        return None
    own = (f"the stack's bucket {store.bucket_name!r}" if store.bucket_name
           else "the stack's bucket (set modelStore.bucketName to name it)")
    return (f"is outside {own} and not under any modelStore.extraReadGrants entry; add "
            f"{folder!r} there to grant the Ray pods read access explicitly")


# Moving refs: a revision that names one is not pinned (a re-run would copy other bytes).
MOVING_REVISIONS = ("main", "master", "HEAD")


class ModelImport(StrictModel):
    """One Hugging Face model copied once into the model store by a Kubernetes Job
    (infra/model_import.py, docs/cold-start.md "Importing a model into the store")."""

    repo: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$",
        description="Hugging Face model repository, `owner/name` (e.g. `Qwen/Qwen2.5-0.5B`).",
    )
    revision: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="The pinned revision to copy: a 40-character commit sha (best) or a tag. "
        "Branch names such as `main` are refused: they move.",
    )
    prefix: str = Field(
        ..., pattern=r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*/)+$",
        description="Destination key prefix (ending in `/`) under `modelStore.modelsPrefix`; "
        "the model lands at `s3://<bucket>/<modelsPrefix><prefix>`.",
    )
    scratch_gib: int = Field(
        40, ge=1, le=2000,
        description="GiB of node disk (emptyDir) the Job may fill with the download; at least "
        "the model's size.",
    )

    @field_validator("revision")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if v in MOVING_REVISIONS:
            raise ValueError(f"revision {v!r} is a branch that moves; give a commit sha or a tag")
        return v

    @field_validator("prefix")
    @classmethod
    def _no_dot_segments(cls, v: str) -> str:
        if any(part in (".", "..") for part in v.split("/")):
            raise ValueError(f"prefix {v!r} has a '.' or '..' segment")
        return v


class ModelStoreConfig(StrictModel):
    """The stack's S3 bucket for model weights and the serving code (see docs/cold-start.md)."""

    bucket_name: str | None = Field(
        None, pattern=S3_BUCKET_PATTERN,
        description="S3 bucket of this stack's model store. Unset: "
        "`llm-platform-<stack>-models-<accountId>`. Set it to write `s3://` model sources "
        "that point into the stack's own bucket.",
    )
    models_prefix: KeyPrefix = Field(
        "models/", description="Key prefix (ending in `/`) under which the Ray pods may read "
        "model weights.",
    )
    code_prefix: KeyPrefix = Field(
        "code/", description="Key prefix (ending in `/`) of the content-addressed serve_app "
        "bundles (`<prefix>serve_app-<sha256>.zip`).",
    )
    extra_read_grants: list[S3Uri] = Field(
        default_factory=list, max_length=20,
        description="Explicit read grants for `s3://bucket/prefix/` locations outside the "
        "stack's bucket; an `s3://` model source must lie in the stack's bucket or under one "
        "of these.",
    )
    image_has_streamer: bool = Field(
        False, description="The serving image ships `runai-model-streamer[s3]`, so models may "
        "set `engineArgs.load_format: runai_streamer` (stream weights from S3). The pinned "
        "`rayproject/ray-llm` image does not (docs/cold-start.md).",
    )
    protect: bool = Field(
        False, description="Pulumi `protect` on the bucket and its KMS key. The bucket is "
        "kept on `pulumi destroy` in every environment (retainOnDelete).",
    )
    noncurrent_version_days: int = Field(
        30, ge=1, le=3650,
        description="Days S3 keeps replaced object versions (old code bundles, weights).",
    )
    service_account: DnsLabel = Field(
        "ray-serving", description="Kubernetes ServiceAccount of the Ray pods; its Pod "
        "Identity role reads the model store.",
    )
    imports: list[ModelImport] = Field(
        default_factory=list, max_length=20,
        description="Hugging Face models to copy into the store, one one-shot Job each "
        "(docs/cold-start.md). Empty: no Job, no importer role.",
    )
    import_cpu: int = Field(
        2, ge=1, le=16, description="CPU cores (vCPU) requested by each import Job's pod.",
    )
    import_memory_gib: int = Field(
        4, ge=1, le=64, description="Memory (GiB) requested by each import Job's pod.",
    )
    import_timeout_minutes: int = Field(
        60, ge=5, le=1440,
        description="Minutes an import Job may run (activeDeadlineSeconds) and `pulumi up` "
        "waits for it.",
    )
    importer_service_account: DnsLabel = Field(
        "model-importer", description="Kubernetes ServiceAccount of the import Jobs; its Pod "
        "Identity role may write only under each import's prefix.",
    )

    @field_validator("importer_service_account")
    @classmethod
    def _importer_has_its_own_identity(cls, v: str, info: ValidationInfo) -> str:
        if v == info.data.get("service_account"):
            raise ValueError(f"importerServiceAccount {v!r} is the Ray pods' serviceAccount; "
                             "the importer's write role needs a ServiceAccount of its own")
        return v

    @field_validator("imports")
    @classmethod
    def _imports_distinct(cls, v: list[ModelImport]) -> list[ModelImport]:
        seen: dict[str, int] = {}
        for i, imp in enumerate(v):
            if imp.prefix in seen:
                raise ValueError(
                    f"imports[{i}].prefix {imp.prefix!r} is also imports[{seen[imp.prefix]}]'s;"
                    " two models would overwrite each other"
                )
            seen[imp.prefix] = i
        return v

    @field_validator("extra_read_grants")
    @classmethod
    def _grants_are_prefixes(cls, v: list[str]) -> list[str]:
        for i, uri in enumerate(v):
            if not uri.endswith("/"):
                raise ValueError(f"extraReadGrants[{i}] {uri!r} must end in '/' (a prefix)")
        return v


# ----------------------------------------------------------------- head failure (GCS on Redis)
class ElastiCacheConfig(StrictModel):
    node_type: str = Field(
        "cache.t4g.medium", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$",
        description="ElastiCache node type of the GCS Redis.",
    )
    engine_version: str = Field(
        "7.1", pattern=r"^[0-9]+\.[0-9]+$", description="Redis OSS engine version."
    )
    replicas: int = Field(
        1, ge=1, le=5,
        description="Replicas besides the primary (at least 1: Multi-AZ automatic failover).",
    )
    snapshot_retention_days: int = Field(
        1, ge=0, le=35, description="Days ElastiCache keeps daily snapshots (0: none)."
    )


class InClusterRedisConfig(StrictModel):
    storage_gib: int = Field(8, ge=1, le=1000, description="GiB of the Redis data volume.")
    storage_class: DnsLabel = Field("gp3", description="StorageClass of the Redis data volume.")


class GcsFaultToleranceConfig(StrictModel):
    """Ray's GCS state kept in Redis, so that a head pod restart loses no Serve state."""

    backend: Literal["elasticache", "inCluster", "external", "off"] = Field(
        "elasticache", description="Where the GCS Redis runs: ElastiCache (Multi-AZ, TLS), an "
        "in-cluster StatefulSet (dev), an `externalAddress`, or off (no head-failure survival).",
    )
    external_address: str | None = Field(
        None, pattern=r"^rediss?://[A-Za-z0-9.-]+:[0-9]{1,5}$",
        description="`redis://host:port` or `rediss://host:port` (TLS) of an existing Redis "
        "(backend external only).",
    )
    elasticache: ElastiCacheConfig = Field(
        default_factory=ElastiCacheConfig, description="The ElastiCache replication group "
        "(backend elasticache)."
    )
    in_cluster: InClusterRedisConfig = Field(
        default_factory=InClusterRedisConfig, description="The in-cluster Redis StatefulSet "
        "(backend inCluster)."
    )

    @model_validator(mode="after")
    def _address_only_for_external(self) -> GcsFaultToleranceConfig:
        if self.backend == "external" and self.external_address is None:
            raise ValueError("backend external needs externalAddress (rediss://host:port)")
        if self.backend != "external" and self.external_address is not None:
            raise ValueError(f"externalAddress is only used with backend external, "
                             f"not {self.backend}")
        return self


# Printable ASCII without space, '"', '/' and '@': what ElastiCache accepts as an auth token.
REDIS_TOKEN_PATTERN = r"^[!#-.0-?A-~]{16,128}$"


# ------------------------------------------------------------------------------------ top level
class StackConfig(StrictModel):
    environment: Environment = Field(
        description="Profile of defaults: dev (cheap), staging, prod (safe)."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every AWS resource.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="The VPC.")
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="The EKS cluster and its system nodes."
    )
    karpenter: KarpenterConfig = Field(
        default_factory=KarpenterConfig,
        description="Karpenter's node classes (AMI, volumes) and the Ray head pool.",
    )
    gpu_node_pools: list[GpuNodePoolConfig] = Field(
        min_length=1, description="GPU NodePools, tried by weight (highest first)."
    )
    ray_service: RayServiceConfig = Field(
        default_factory=RayServiceConfig,
        description="KubeRay RayService: upgrade strategy, autoscaler, head and ingress pods.",
    )
    serving: ServingConfig = Field(
        description="What the platform serves: models, aliases, API keys (serve_app/config.py)."
    )
    cost_ceiling_per_hour: float = Field(
        gt=0,
        description="USD/h: the most the GPU NodePools may cost per hour at their limits "
        "(on-demand prices of `aws:region` from infra/catalog.py). A stack whose worst case "
        "exceeds it fails the config check and the policy pack.",
    )
    grafana_admin_password: SecretStr | None = secret(description="Grafana admin password.")
    alertmanager_slack_webhook_url: SecretStr | None = secret(
        description="Slack incoming webhook for alerts."
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig,
        description="Prometheus, Alertmanager and Grafana on the system nodes: retention, sizes.",
    )
    alertmanager_webhook_url: SecretStr | None = secret(
        description="Webhook (e.g. a paging service's Alertmanager endpoint) for critical alerts."
    )
    exposure: ExposureConfig = Field(
        default_factory=ExposureConfig, description="How clients reach the Serve port."
    )
    api_keys: dict[Name, SecretStr] | None = (
        secret(
            description="API keys by key name (the names serving.auth.allowedModels uses), each"
            " 16-256 characters; mounted into the Ray pods as the keys file. Set one key with"
            " `pulumi config set --secret --path 'apiKeys.<name>' <key>`; rotating is `pulumi up`"
            " (picked up without a restart, see docs/serving-edge.md).",
        )
    )
    # ---- model store, code delivery, head failure (issue 11)
    model_store: ModelStoreConfig = Field(
        default_factory=ModelStoreConfig, description="S3 bucket for model weights and the "
        "serving code, read by the Ray pods through EKS Pod Identity (docs/cold-start.md)."
    )
    gcs_fault_tolerance: GcsFaultToleranceConfig = Field(
        default_factory=GcsFaultToleranceConfig, description="Redis that keeps Ray's GCS state "
        "so that the Ray head can restart without losing the Serve applications."
    )
    hugging_face_token: SecretStr | None = secret(
        description="Hugging Face token for gated models; goes into a Kubernetes Secret and "
        "the Ray pods' env (HF_TOKEN), never into serveConfigV2.",
    )
    redis_auth_token: SecretStr | None = secret(
        description="Auth token of the GCS Redis (16 to 128 printable characters without "
        "space, '\"', '/' or '@'). Unset: generated once and kept in the state as a secret.",
    )

    # Cross-field checks are field validators so each error carries the key's own path.
    @field_validator("karpenter")
    @classmethod
    def _prod_pins_ami(cls, v: KarpenterConfig, info: ValidationInfo) -> KarpenterConfig:
        if info.data.get("environment") == "prod" and v.gpu_ami_version is None:
            raise ValueError("gpuAmiVersion must be pinned in prod (e.g. v20251108)")
        return v

    @model_validator(mode="after")
    def _private_endpoint_needs_a_way_in(self) -> StackConfig:
        # The EKS-managed cluster security group admits only itself: without a rule nothing
        # outside the cluster, the deployer included, reaches a private endpoint. (A model
        # check, so that it also holds when the stack file leaves `cluster` out.)
        if self.cluster.endpoint_access == "private" and not self.cluster.has_api_access_source:
            raise ValueError(
                f"cluster.endpointAccess is private but nothing may reach the API: set "
                f"{PROJECT}:cluster.apiAccessCidrs (the CIDR of your CI runner, VPN or peered "
                f"network) or {PROJECT}:cluster.apiAccessSecurityGroupIds"
            )
        return self

    @field_validator("serving")
    @classmethod
    def _keys_file_is_the_platforms(cls, v: ServingConfig) -> ServingConfig:
        if v.auth.keys_file is not None:
            # On EKS the keys file is the mounted apiKeys Secret (infra/api_keys.py); a path set
            # here would be overridden, so it is refused rather than silently ignored.
            raise error_at(
                ("auth", "keysFile"), v.auth.keys_file,
                "is set by the platform (the mounted apiKeys Secret); set the keys with"
                " `pulumi config set --secret --path 'apiKeys.<name>' ...` instead",
            )
        return v

    @field_validator("exposure")
    @classmethod
    def _public_alb_on_private_stack(
        cls, v: ExposureConfig, info: ValidationInfo
    ) -> ExposureConfig:
        cluster = info.data.get("cluster")
        alb = v.alb
        if (alb.enabled and alb.scheme == "internet-facing" and not alb.allowed_cidrs
                and cluster is not None and cluster.endpoint_access == "private"):
            raise error_at(
                ("alb", "allowedCidrs"), alb.allowed_cidrs,
                "must list the client CIDRs: an internet-facing ALB on a stack whose API"
                " endpoint is private (cluster.endpointAccess) would be open to the whole"
                " internet",
            )
        return v

    @field_validator("api_keys")
    @classmethod
    def _keys_cover_allowed_models(
        cls, v: dict[str, SecretStr] | None, info: ValidationInfo
    ) -> dict[str, SecretStr] | None:
        for name, key in (v or {}).items():
            n = len(key.get_secret_value())
            if not 16 <= n <= 256 or any(c.isspace() for c in key.get_secret_value()):
                raise error_at((name,), "[secret]", f"must be 16-256 characters with no"
                               f" whitespace (got {n} characters)")
        serving = info.data.get("serving")
        if v is None or serving is None:
            return v
        unknown = sorted(set(serving.auth.allowed_models) - set(v))
        if unknown:
            # A typo here would leave the intended key unrestricted (unlisted keys may call all).
            raise ValueError(
                f"serving.auth.allowedModels names keys {unknown} that apiKeys does not define"
                f" (defined: {sorted(v)})"
            )
        return v

    @field_validator("gpu_node_pools")
    @classmethod
    def _unique_pool_names(cls, v: list[GpuNodePoolConfig]) -> list[GpuNodePoolConfig]:
        names = [p.name for p in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique; repeated: {dupes}")
        return v

    @field_validator("model_store")
    @classmethod
    def _model_sources_are_granted(
        cls, v: ModelStoreConfig, info: ValidationInfo
    ) -> ModelStoreConfig:
        serving = info.data.get("serving")
        if serving is None:  # serving failed validation; its own error is reported
            return v
        for i, model in enumerate(serving.models):
            key = f"serving.models[{i}]"
            problem = model_source_problem(model.source, v)
            if problem:
                raise ValueError(f"{key}.source {model.source!r} {problem}")
            fmt = model.engine_args.get("load_format")
            if fmt in STREAMING_LOAD_FORMATS and not v.image_has_streamer:
                raise ValueError(
                    f"{key}.engineArgs.load_format {fmt!r} needs runai-model-streamer[s3] in "
                    "the serving image, which the pinned ray-llm image lacks; drop it (the "
                    "model is then downloaded to the node's disk) or set "
                    "modelStore.imageHasStreamer: true for an image that has it"
                )
        return v

    @field_validator("gcs_fault_tolerance")
    @classmethod
    def _prod_survives_head_failure(
        cls, v: GcsFaultToleranceConfig, info: ValidationInfo
    ) -> GcsFaultToleranceConfig:
        if info.data.get("environment") == "prod" and v.backend not in ("elasticache", "external"):
            raise ValueError(
                f"backend {v.backend!r} in prod: the head must survive a restart on a managed "
                "Multi-AZ Redis (elasticache or external)"
            )
        return v

    @field_validator("redis_auth_token")
    @classmethod
    def _redis_token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        # The message never echoes the value.
        if v is not None and not re.fullmatch(REDIS_TOKEN_PATTERN, v.get_secret_value()):
            raise ValueError(
                f"must be 16 to 128 printable characters without space, '\"', '/' or '@' "
                f"(got {len(v.get_secret_value())} characters)"
            )
        return v


# ------------------------------------------------------------------------------ profile defaults
# What each environment gets for keys its stack file leaves out. Lists are replaced, not merged.
PROFILES: dict[str, dict[str, Any]] = {
    "dev": {
        "costCeilingPerHour": cost.DEFAULT_CEILING_USD_PER_HOUR["dev"],
        "network": {"natGateways": "single", "flowLogs": False},
        "rayService": {
            "upgradeStrategy": "NewCluster",
            "autoscalerIdleTimeoutSeconds": 300,
            "head": {"cpu": 2, "memoryGib": 8},
            "ingressWorkers": {"cpu": 2, "memoryGib": 4},
        },
        "cluster": {"protect": False, "systemNodeGroup": {"minSize": 1, "desiredSize": 2},
                    "supportType": "STANDARD"},
        "monitoring": {"prometheusRetention": "3d", "prometheusVolumeGib": 20,
                       "prometheusMemoryGib": 2},
        "gpuNodePools": [
            {"name": "g6e", "family": "g6e", "sizes": ["xlarge", "2xlarge", "4xlarge"],
             "capacityTypes": ["spot", "on-demand"], "limits": {"gpus": 4}, "weight": 100,
             "consolidateAfter": "10m"},
            {"name": "g5", "family": "g5", "sizes": ["xlarge", "2xlarge", "4xlarge"],
             "capacityTypes": ["spot", "on-demand"], "limits": {"gpus": 4}, "weight": 50,
             "consolidateAfter": "10m"},
        ],
        "modelStore": {"noncurrentVersionDays": 7},
        "gcsFaultTolerance": {"backend": "inCluster"},
    },
    "staging": {
        "costCeilingPerHour": cost.DEFAULT_CEILING_USD_PER_HOUR["staging"],
        "network": {"natGateways": "single"},
        "rayService": {
            "upgradeStrategy": "NewCluster",
            "autoscalerIdleTimeoutSeconds": 600,
            "head": {"cpu": 2, "memoryGib": 8},
            "ingressWorkers": {"cpu": 2, "memoryGib": 4},
        },
        "cluster": {"protect": False, "supportType": "STANDARD"},
        "gpuNodePools": [
            {"name": "g6e", "family": "g6e", "capacityTypes": ["spot", "on-demand"],
             "limits": {"gpus": 8}, "weight": 100},
            {"name": "g5", "family": "g5", "capacityTypes": ["spot", "on-demand"],
             "limits": {"gpus": 8}, "weight": 50},
        ],
        "gcsFaultTolerance": {"backend": "elasticache",
                              "elasticache": {"nodeType": "cache.t4g.medium"}},
    },
    "prod": {
        "rayService": {
            "upgradeStrategy": "NewCluster",
            "autoscalerIdleTimeoutSeconds": 1200,
            "head": {"cpu": 4, "memoryGib": 16},
            "ingressWorkers": {"cpu": 4, "memoryGib": 8},
        },
        "costCeilingPerHour": cost.DEFAULT_CEILING_USD_PER_HOUR["prod"],
        "cluster": {"supportType": "EXTENDED"},
        "monitoring": {"prometheusRetention": "30d", "prometheusVolumeGib": 200,
                       "prometheusMemoryGib": 8, "replicas": 2},
        "exposure": {"alb": {"deletionProtection": True}},
        "gpuNodePools": [
            {"name": "g6e", "family": "g6e", "limits": {"gpus": 32}, "weight": 100},
            {"name": "g5", "family": "g5", "limits": {"gpus": 16}, "weight": 50},
            # 24: a 70B model at 2 x 8 GPUs plus a NewCluster upgrade's first replica (8).
            {"name": "p4d", "family": "p4d", "limits": {"gpus": 24}, "weight": 10,
             "consolidateAfter": "1h"},
        ],
        "modelStore": {"protect": True, "noncurrentVersionDays": 90},
        "gcsFaultTolerance": {"backend": "elasticache", "elasticache": {
            "nodeType": "cache.r7g.large", "replicas": 2, "snapshotRetentionDays": 7}},
    },
}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def with_profile(values: Mapping[str, Any]) -> dict[str, Any]:
    """The stack file's values laid over its environment's profile defaults."""
    env = values.get("environment")
    base = copy.deepcopy(PROFILES[env]) if isinstance(env, str) and env in PROFILES else {}
    return _merge(base, copy.deepcopy(dict(values)))


# ---------------------------------------------------------------------------------- error report
class ConfigError(Exception):
    """A stack config with one or more bad keys; `str()` lists every one by its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the {PROJECT} stack config:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def _path(loc: tuple[int | str, ...]) -> str:
    out = f"{PROJECT}:"
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if i else "") + part
    return out


def _model_at(loc: tuple[int | str, ...]) -> type[StrictModel] | None:
    """The model class that holds the field at `loc` (for listing allowed keys)."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = _fields_by_alias(model).get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _fields_by_alias(model: type[StrictModel]) -> dict[str, Any]:
    return {(f.alias or n): f for n, f in model.model_fields.items()}


def _inner_model(annotation: Any) -> type[StrictModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden" and loc:
        parent = _model_at(loc[:-1])
        allowed = sorted(_fields_by_alias(parent)) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"unknown key{hint}; allowed: {', '.join(allowed)}"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return f"{_path(loc)}: {msg}" if loc else f"{PROJECT}: {msg}"


# ----------------------------------------------------------------------------------- the loader
def secret_paths(model: type[StrictModel] = StackConfig, prefix: str = "") -> list[str]:
    """Dotted alias paths of every field that must be a Pulumi secret."""
    out: list[str] = []
    for alias, field in _fields_by_alias(model).items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("secret"):
            out.append(prefix + alias)
        inner = _inner_model(field.annotation)
        if inner is not None:
            out += secret_paths(inner, f"{prefix}{alias}.")
    return out


def parse_raw(values: Mapping[str, str]) -> dict[str, Any]:
    """Pulumi hands structured config values over as JSON text; scalars as plain text."""
    out: dict[str, Any] = {}
    for key, text in values.items():
        if not isinstance(text, str):
            out[key] = text
            continue
        try:
            out[key] = json.loads(text) if text[:1] in "[{" else text
        except json.JSONDecodeError:
            out[key] = text
    return out


def validate(
    values: Mapping[str, Any],
    secret_keys: set[str] = frozenset(),  # type: ignore[assignment]
    region: str | None = None,
) -> StackConfig:
    """Validate the `llm-platform:*` values (keys without the namespace) of one stack.

    `secret_keys` are the top-level keys that Pulumi holds as secrets. `region` (`aws:region`)
    prices the GPU pools against `costCeilingPerHour`; `load()` always passes it, callers that
    only need the model may leave it out. Raises ConfigError.
    """
    problems: list[str] = []
    raw = with_profile(values)
    for path in secret_paths():
        top = path.split(".", 1)[0]
        if _present(raw, path) and top not in secret_keys:
            problems.append(
                f"{PROJECT}:{path}: must be a Pulumi secret "
                f"(pulumi config set --secret {'--path ' if '.' in path else ''}{path} ...)"
            )
    try:
        cfg = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems += [_describe(e) for e in exc.errors()]
        raise ConfigError(problems) from None
    # Does every model fit its GPUs and pool? (needs the whole, schema-valid config)
    from infra.capacity import fit as capacity  # imports this module's types

    problems += [f"{PROJECT}:{p}" for p in capacity.problems(cfg)]
    if region is not None:
        problems += cost_problems(cfg, region)
    if problems:
        raise ConfigError(problems)
    return cfg


# ------------------------------------------------------------------------------ GPU cost ceiling
def pool_costs(cfg: StackConfig, region: str) -> list[cost.PoolCost]:
    """Worst case of every GPU pool at its limits (the same limits `karpenter.nodepool` emits)."""
    out = []
    for p in cfg.gpu_node_pools:
        types = instance_types(p.family, p.sizes)
        cpu = p.limits.cpu or p.limits.gpus * cost.max_vcpu_per_gpu(types)
        out.append(cost.pool_worst_case(p.name, types, region, p.limits.gpus, cpu,
                                        p.limits.memory_gib))
    return out


def min_replica_costs(
    cfg: StackConfig, region: str
) -> list[tuple[str, str, cost.PoolCost]]:
    """(model id, pool, cheapest fleet for its minReplicas) of every GPU model: what runs all the
    time, priced per model on the pool the RayService places it on (infra/capacity.py)."""
    from infra.capacity import fit as capacity  # imports this module's types

    out = []
    for m in cfg.serving.models:
        gpus = capacity.tensor_parallel_size(m)
        pool, _ = capacity.resolve_pool(m, list(cfg.gpu_node_pools))
        if gpus == 0 or pool is None:
            continue
        fleet = cost.min_replicas_cost(instance_types(pool.family, pool.sizes), region,
                                       m.autoscaling.min_replicas, gpus)
        out.append((m.id, pool.name, fleet))
    return out


def cost_problems(cfg: StackConfig, region: str) -> list[str]:
    """The cost ceiling check: a region without prices, or a worst case above the ceiling."""
    try:
        pools = pool_costs(cfg, region)
    except UnknownRegionError as exc:
        return [f"aws:region: {exc.args[0]}"]
    total = sum(p.usd_per_hour for p in pools)
    if total <= cfg.cost_ceiling_per_hour:
        return []
    return [
        f"{PROJECT}:costCeilingPerHour: the GPU NodePools can cost {total:.2f} USD/h at their "
        f"limits in {region} ({'; '.join(p.describe() for p in pools)}), above "
        f"costCeilingPerHour {cfg.cost_ceiling_per_hour:g} USD/h: lower "
        f"gpuNodePools[].limits (gpus, cpu, memoryGib) or narrow sizes, or raise "
        f"costCeilingPerHour in a reviewed change"
    ]


def _present(raw: Mapping[str, Any], path: str) -> bool:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return False
        node = node[part]
    return True


def load() -> StackConfig:
    """Read and validate this stack's config from the Pulumi runtime (once, at start)."""
    from pulumi.runtime import config as rc

    # A real run hands config over in PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS; mocks and
    # tests set it with `set_all_config`. Both are read so that unknown keys can be rejected.
    values = {**rc.get_config_env(), **rc.CONFIG.get()}
    secret = set(rc.get_config_secret_keys_env()) | {k for k in values if rc.is_config_secret(k)}
    region = values.get("aws:region")
    if not region:
        raise ConfigError(["aws:region: required (it prices the GPU pools for costCeilingPerHour)"])
    return validate(*own_keys(values, secret), region=str(region))


def own_keys(values: Mapping[str, Any], secret: set[str]) -> tuple[dict[str, Any], set[str]]:
    """This project's keys without the namespace (`llm-platform:x` or `llm-platform:config:x`)."""
    def strip(key: str) -> str | None:
        ns, _, rest = key.partition(":")
        return rest.removeprefix("config:") if ns == PROJECT else None

    ours = {strip(k): v for k, v in values.items() if strip(k) is not None}
    return parse_raw(ours), {s for k in secret if (s := strip(k)) is not None}
