"""Karpenter: IAM, interruption queue, CRD and controller charts, EC2NodeClasses and NodePools.

The IAM and EventBridge documents are in `karpenter_iam.py`.

The Kubernetes objects are built by pure functions (`nodepool`, `gpu_node_class`, ...) that the
tests validate against the upstream CRD schemas. Teardown order is encoded with dependsOn:
NodePools -> EC2NodeClasses -> controller -> CRDs -> system node group. Pulumi destroys in
reverse dependency order, so the controller is still running while it drains and terminates the
nodes of the deleted NodePools, and no Karpenter node outlives the stack.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import labels, versions
from infra.capacity import cost
from infra.capacity.catalog import CATALOG, instance_types
from infra.component import register_declared_outputs
from infra.config.gpu_node_pools import GpuNodePoolConfig
from infra.config.karpenter import KarpenterConfig
from infra.context import StackContext
from infra.foundation.cluster import Cluster
from infra.foundation.karpenter_iam import controller_policy, interruption_rules, queue_policy
from infra.foundation.network import DISCOVERY_TAG
from infra.helm import pinned_release
from infra.iam import node_role as make_node_role
from infra.iam import pod_identity_role
from infra.labels import GPU_MODEL_LABEL, GPU_POOL_LABEL, NODE_CLASS_LABEL  # noqa: F401 (API)

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
GPU_NODE_CLASS = "gpu"
HEAD_NODE_CLASS = "ray-head"
HEAD_POOL = "ray-head"
# How long `pulumi destroy` waits for Karpenter to drain and terminate a pool's nodes.
DRAIN_TIMEOUT = "30m"


# --------------------------------------------------------------------------- chart values
def controller_values(
    cluster_name: str, queue_name: str, custom_networking: bool = False
) -> dict[str, Any]:
    """Helm values of the controller chart: on the system nodes, image pinned by digest.

    With VPC CNI custom networking (`network.podCidr`), the node's primary ENI carries no pod
    IPs; `reservedENIs: "1"` keeps Karpenter's max-pods and kube-reserved from counting it (the
    chart's values.yaml documents the setting for exactly this setup).
    """
    image = versions.KARPENTER_IMAGE
    sched = labels.system_scheduling()
    settings = {"clusterName": cluster_name, "interruptionQueue": queue_name}
    if custom_networking:
        settings["reservedENIs"] = "1"
    return {
        "settings": settings,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **sched["nodeSelector"]},
        "tolerations": sched["tolerations"],
        "controller": {
            "image": {"repository": image.repository, "tag": image.tag, "digest": image.digest},
            "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"memory": "1Gi"},
            },
        },
        # The chart's ServiceMonitor (needs the monitoring CRDs first: see `monitoring_crds`).
        # honorLabels keeps the pods' own `namespace` on karpenter_pods_* series instead of
        # renaming it exported_namespace (charts/karpenter/templates/servicemonitor.yaml).
        "serviceMonitor": {"enabled": True, "endpointConfig": {"honorLabels": True}},
    }


# ------------------------------------------------------------------- Kubernetes objects
def ami_alias(cfg: KarpenterConfig) -> str:
    """`al2023@v20251108` / `bottlerocket@v1.50.0`; Karpenter picks the NVIDIA variant for GPU
    instance types. Unpinned (`latest`) only outside prod (the config enforces that)."""
    family = "al2023" if cfg.gpu_ami_family == "al2023-nvidia" else "bottlerocket"
    return f"{family}@{cfg.gpu_ami_version or 'latest'}"


def _discovery(cluster_name: str) -> dict[str, Any]:
    return {
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
    }


def _hardened_metadata() -> dict[str, Any]:
    # IMDSv2 only, one hop: pods (not on the host network) cannot reach node credentials.
    return {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}


def gpu_node_class(
    cfg: KarpenterConfig, cluster_name: str, instance_profile: str, tags: dict[str, str]
) -> dict[str, Any]:
    """EC2NodeClass of the GPU pools: GPU AMI, big encrypted gp3 volume for model images."""
    bottlerocket = cfg.gpu_ami_family == "bottlerocket-nvidia"
    ebs: dict[str, Any] = {
        "volumeSize": f"{cfg.root_volume_gib}Gi",
        "volumeType": "gp3",
        "iops": cfg.volume_iops,
        "throughput": cfg.volume_throughput,
        "encrypted": True,
        "deleteOnTermination": True,
    }
    if cfg.image_cache_snapshot_id:
        # A snapshot of a volume with the serving images already pulled: no multi-GB pull.
        ebs["snapshotID"] = cfg.image_cache_snapshot_id
    devices: list[dict[str, Any]]
    if bottlerocket:
        # Bottlerocket keeps the OS on xvda and images/containers on the data volume xvdb.
        devices = [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": "8Gi", "volumeType": "gp3", "encrypted": True,
                        "deleteOnTermination": True},
            },
            {"deviceName": "/dev/xvdb", "rootVolume": False, "ebs": ebs},
        ]
    else:
        devices = [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]
    return {
        "apiVersion": NODECLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": GPU_NODE_CLASS},
        "spec": {
            "amiSelectorTerms": [{"alias": ami_alias(cfg)}],
            "instanceProfile": instance_profile,
            **_discovery(cluster_name),
            "metadataOptions": _hardened_metadata(),
            "blockDeviceMappings": devices,
            "tags": dict(tags),
        },
    }


def head_node_class(
    cfg: KarpenterConfig, cluster_name: str, instance_profile: str, tags: dict[str, str]
) -> dict[str, Any]:
    """EC2NodeClass of the Ray head pool: standard AL2023 (same release as the GPU AMI)."""
    version = cfg.gpu_ami_version if cfg.gpu_ami_family == "al2023-nvidia" else None
    return {
        "apiVersion": NODECLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": HEAD_NODE_CLASS},
        "spec": {
            "amiSelectorTerms": [{"alias": f"al2023@{version or 'latest'}"}],
            "instanceProfile": instance_profile,
            **_discovery(cluster_name),
            "metadataOptions": _hardened_metadata(),
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "rootVolume": True,
                    "ebs": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True,
                            "deleteOnTermination": True},
                }
            ],
            "tags": dict(tags),
        },
    }


def _node_class_ref(name: str) -> dict[str, str]:
    return {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}


def _budgets(nodes: str) -> list[dict[str, Any]]:
    return [{"nodes": nodes}]


def nodepool(pool: GpuNodePoolConfig) -> dict[str, Any]:
    """A GPU NodePool from config: catalogued instance types only, GPU taint, stable labels,
    required GPU limit, and disruption that only ever removes empty nodes."""
    types = instance_types(pool.family, pool.sizes)
    gpu_model = next(iter(CATALOG[pool.family].values())).gpu_model
    # A CPU limit always: a GPU limit alone would not bound a pool that could launch a GPU-less
    # instance. The default never binds before the GPU limit (infra/capacity/cost.py).
    limits: dict[str, Any] = {
        "nvidia.com/gpu": pool.limits.gpus,
        "cpu": pool.limits.cpu or pool.limits.gpus * cost.max_vcpu_per_gpu(types),
    }
    if pool.limits.memory_gib is not None:
        limits["memory"] = f"{pool.limits.memory_gib}Gi"
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": pool.name},
        "spec": {
            "weight": pool.weight,
            "limits": limits,
            "disruption": {
                # Empty only: a node serving a model is never consolidated away.
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": pool.consolidate_after,
                "budgets": _budgets(pool.disruption_budget),
            },
            "template": {
                "metadata": {
                    "labels": {
                        labels.NODE_CLASS_LABEL: labels.NODE_CLASS_GPU,
                        labels.GPU_POOL_LABEL: pool.name,
                        labels.GPU_MODEL_LABEL: gpu_model,
                        labels.NVIDIA_GPU_PRESENT_LABEL: "true",
                    }
                },
                "spec": {
                    "nodeClassRef": _node_class_ref(GPU_NODE_CLASS),
                    "expireAfter": pool.expire_after,
                    "taints": [dict(labels.GPU_TAINT)],
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": [t.name for t in types],
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": list(pool.capacity_types),
                        },
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                },
            },
        },
    }


def head_nodepool(cfg: KarpenterConfig) -> dict[str, Any]:
    """Small on-demand CPU pool for Ray head pods; empty-only consolidation, since a head
    restart restarts the Serve controller."""
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": HEAD_POOL},
        "spec": {
            "weight": 10,
            "limits": {"cpu": cfg.head_pool_cpu_limit},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": "10m",
                "budgets": _budgets("1"),
            },
            "template": {
                "metadata": {"labels": {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_RAY_HEAD}},
                "spec": {
                    "nodeClassRef": _node_class_ref(HEAD_NODE_CLASS),
                    "expireAfter": "720h",
                    "requirements": [
                        {
                            "key": "karpenter.k8s.aws/instance-family",
                            "operator": "In",
                            "values": list(cfg.head_pool_instance_families),
                        },
                        {
                            "key": "karpenter.k8s.aws/instance-cpu",
                            "operator": "In",
                            "values": ["4", "8", "16"],
                        },
                        {"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": ["on-demand"]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                },
            },
        },
    }


# ------------------------------------------------------------------------------ component
class Karpenter(pulumi.ComponentResource):
    """Karpenter for one cluster: GPU NodePools from `pools`, plus the Ray head pool."""

    queue_name: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    # The controller's Helm release: depend on it so that teardown drains nodes first.
    controller: k8s.helm.v3.Release
    node_classes: dict[str, k8s.apiextensions.CustomResource]
    node_pools: dict[str, k8s.apiextensions.CustomResource]
    # The GPU pools only (not ray-head): what GPU DaemonSets wait for.
    gpu_node_pools: list[k8s.apiextensions.CustomResource]

    def __init__(
        self,
        name: str,
        *,
        cfg: KarpenterConfig,
        pools: list[GpuNodePoolConfig],
        cluster: Cluster,
        ctx: StackContext,
        monitoring_crds: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:aws:Karpenter", name, None, opts)
        cluster_name, tags = ctx.cluster_name, ctx.tags
        child = pulumi.ResourceOptions(parent=self)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        account = aws.get_caller_identity_output().account_id
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region

        # -- interruption queue, fed by EventBridge
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=cluster_name,
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        rules = []
        for rule_name, pattern in interruption_rules().items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"Karpenter ({cluster_name}): {rule_name}",
                event_pattern=json.dumps(pattern),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}",
                rule=rule.name,
                arn=queue.arn,
                target_id="KarpenterInterruptionQueue",
                opts=child,
            )
            rules.append(rule)
        queue_pol = aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *[r.arn for r in rules]).apply(
                lambda a: json.dumps(queue_policy(a[0], list(a[1:])))
            ),
            opts=child,
        )

        # -- node identity: role, instance profile (handed to Karpenter), access entry
        node_role, node_attachments = make_node_role(f"{name}-node", tags, self)
        profile = aws.iam.InstanceProfile(
            f"{name}-node", role=node_role.name, tags=tags, opts=child
        )
        access = aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=cluster.name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            tags=tags,
            opts=child,
        )

        # -- controller identity (Pod Identity)
        controller_iam = pod_identity_role(
            f"{name}-controller",
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy_json=pulumi.Output.all(
                partition, region, account, queue.arn, node_role.arn
            ).apply(
                lambda a: json.dumps(
                    controller_policy(
                        partition=a[0],
                        region=a[1],
                        account=a[2],
                        cluster_name=cluster_name,
                        queue_arn=a[3],
                        node_role_arn=a[4],
                    )
                )
            ),
            cluster_name=cluster.name,
            tags=tags,
            opts=child,
        )

        # -- charts: CRDs first, then the controller (which skips its bundled CRDs)
        crds = pinned_release(
            f"{name}-crd",
            release_name="karpenter-crd",
            chart=versions.KARPENTER_CRD_CHART,
            namespace=NAMESPACE,
            opts=pulumi.ResourceOptions.merge(
                k8s_child, pulumi.ResourceOptions(depends_on=[cluster.node_group])
            ),
        )
        self.controller = pinned_release(
            f"{name}-controller",
            release_name="karpenter",
            chart=versions.KARPENTER_CHART,
            namespace=NAMESPACE,
            skip_crds=True,
            values=queue.name.apply(
                lambda q: controller_values(cluster_name, q, cluster.custom_networking)
            ),
            opts=pulumi.ResourceOptions.merge(
                k8s_child,
                pulumi.ResourceOptions(
                    depends_on=[
                        crds, cluster.node_group, controller_iam.association,
                        *controller_iam.policies, queue_pol,
                        # Karpenter's EC2 dry run at start needs Pod Identity credentials.
                        cluster.pod_identity_agent,
                        # Its chart makes a ServiceMonitor: the CRD must exist first.
                        monitoring_crds,
                    ]
                ),
            ),
        )

        # -- node classes and pools; each layer depends on the one it must outlive
        self.node_classes = {}
        builders = {GPU_NODE_CLASS: gpu_node_class, HEAD_NODE_CLASS: head_node_class}
        for cls_name, build in builders.items():
            obj = profile.name.apply(lambda p, build=build: build(cfg, cluster_name, p, tags))
            self.node_classes[cls_name] = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{cls_name}",
                api_version=NODECLASS_API,
                kind="EC2NodeClass",
                metadata={"name": cls_name},
                spec=obj.apply(lambda o: o["spec"]),
                opts=pulumi.ResourceOptions.merge(
                    k8s_child,
                    pulumi.ResourceOptions(
                        depends_on=[self.controller, access, *node_attachments],
                        custom_timeouts=pulumi.CustomTimeouts(delete=DRAIN_TIMEOUT),
                    ),
                ),
            )
        self.node_pools = {}
        for obj, cls_name in [(nodepool(p), GPU_NODE_CLASS) for p in pools] + [
            (head_nodepool(cfg), HEAD_NODE_CLASS)
        ]:
            pool_name = obj["metadata"]["name"]
            self.node_pools[pool_name] = k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool_name}",
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata=obj["metadata"],
                spec=obj["spec"],
                opts=pulumi.ResourceOptions.merge(
                    k8s_child,
                    pulumi.ResourceOptions(
                        depends_on=[self.node_classes[cls_name], self.controller],
                        custom_timeouts=pulumi.CustomTimeouts(delete=DRAIN_TIMEOUT),
                    ),
                ),
            )

        self.gpu_node_pools = [self.node_pools[p.name] for p in pools]
        self.queue_name = queue.name
        self.node_role_arn = node_role.arn
        register_declared_outputs(self)
