"""The EKS cluster: control plane (pulumi-eks), system node group, managed add-ons, storage.

Access is by EKS access entries only (`authenticationMode: API`, no aws-auth ConfigMap). The
system node group is on-demand and tainted `CriticalAddonsOnly`, so only add-ons and operators
that tolerate it run there; GPU nodes carry their own taint, so neither side leaks onto the other.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from infra import labels
from infra.component import register_declared_outputs
from infra.config.cluster import ClusterConfig
from infra.context import StackContext
from infra.foundation.network import DISCOVERY_TAG, Network
from infra.iam import node_role, pod_identity_role

ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"


def access_entries(cfg: ClusterConfig) -> dict[str, dict[str, Any]]:
    """Admin and read-only access entries, keyed by a stable name (the key names the resource)."""
    out: dict[str, dict[str, Any]] = {}
    for kind, arns, policy in (
        ("admin", cfg.admin_role_arns, ADMIN_POLICY),
        ("view", cfg.read_only_role_arns, VIEW_POLICY),
    ):
        for i, arn in enumerate(arns):
            out[f"{kind}-{i}"] = {
                "principal_arn": arn,
                "access_policies": {
                    kind: {"policy_arn": policy, "access_scope": {"type": "cluster"}}
                },
            }
    return out


def endpoint_settings(cfg: ClusterConfig) -> dict[str, Any]:
    """Private endpoint always on; public only with an allow-list (validated in config)."""
    public = cfg.endpoint_access == "public"
    return {
        "endpoint_private_access": True,
        "endpoint_public_access": public,
        "public_access_cidrs": [str(c) for c in cfg.public_access_cidrs] if public else None,
    }


def api_access_rules(cfg: ClusterConfig) -> dict[str, dict[str, str]]:
    """One tcp/443 ingress rule per `apiAccessCidrs` / `apiAccessSecurityGroupIds` entry, keyed
    by a stable name (the key names the resource)."""
    out: dict[str, dict[str, str]] = {}
    for i, cidr in enumerate(cfg.api_access_cidrs):
        out[f"cidr-{i}"] = {"cidr_ipv4": str(cidr),
                            "description": f"Kubernetes API from {cidr} (apiAccessCidrs)"}
    for i, sg in enumerate(cfg.api_access_security_group_ids):
        out[f"sg-{i}"] = {"referenced_security_group_id": sg,
                          "description": f"Kubernetes API from {sg} (apiAccessSecurityGroupIds)"}
    return out


def gp3_storage_class() -> dict[str, Any]:
    """The default StorageClass: encrypted gp3 via the EBS CSI driver, bound where the pod lands
    (a volume in another zone than its pod can never attach)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp3",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def system_addon_placement() -> dict[str, Any]:
    """Add-on configuration that pins a controller to the system nodes."""
    sched = labels.system_scheduling()
    return {"nodeSelector": sched["nodeSelector"], "tolerations": sched["tolerations"]}


class Cluster(pulumi.ComponentResource):
    """EKS cluster, its system node group, add-ons and default StorageClass."""

    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]  # secret
    # The EKS-managed cluster security group (system and Karpenter nodes both join it).
    security_group_id: pulumi.Output[str]
    node_group: aws.eks.NodeGroup
    # Pods using Pod Identity (Karpenter's EC2 dry run at start) wait for its agent.
    pod_identity_agent: aws.eks.Addon
    # Pods take IPs from `network.podCidr` subnets (VPC CNI custom networking).
    custom_networking: bool
    # The Kubernetes provider: every Kubernetes object of every component goes through it.
    provider: k8s.Provider
    # The default gp3 StorageClass: anything that claims a volume waits for it.
    storage_class: k8s.storage.v1.StorageClass

    def __init__(
        self,
        name: str,
        *,
        cfg: ClusterConfig,
        network: Network,
        ctx: StackContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:aws:Cluster", name, None, opts)
        cluster_name, tags = ctx.cluster_name, ctx.tags
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{name}-secrets",
            description=f"EKS secrets envelope encryption for {cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect),
        )
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{cluster_name}-eks-secrets",
            target_key_id=key.key_id,
            opts=child,
        )

        vpc_cni: dict[str, Any] = {
            "addon_version": cfg.addon_versions.vpc_cni,
            # Without this, NetworkPolicies are accepted and do nothing. pulumi-eks turns it into
            # the add-on configuration value `enableNetworkPolicy: "true"` (nodejs/eks/addons/
            # cni-addon.ts, mergeConfigurationValues), the key the add-on's schema takes from
            # aws/amazon-vpc-cni-k8s charts/aws-vpc-cni/values.yaml at tag v1.23.0 (default
            # "false").
            "enable_network_policy": True,
        }
        self.custom_networking = bool(network.pod_subnets)
        if self.custom_networking:
            # Pods take IPs from the secondary range: one ENIConfig per zone, named after it.
            vpc_cni.update(
                cni_custom_network_cfg=True, eni_config_label_def="topology.kubernetes.io/zone"
            )

        self._eks = eks.Cluster(
            name,
            name=cluster_name,
            version=cfg.kubernetes_version,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries(cfg),
            create_oidc_provider=False,  # Pod Identity instead of IRSA
            encryption_config_key_arn=key.arn,
            enabled_cluster_log_types=list(cfg.log_types),
            deletion_protection=cfg.protect,
            # What happens at the end of standard support: EXTENDED stays (surcharge per
            # cluster-hour), STANDARD is upgraded by EKS. Explicit, since EKS defaults to
            # EXTENDED.
            upgrade_policy={"support_type": cfg.support_type},
            vpc_cni_options=vpc_cni,
            kube_proxy_addon_options={"version": cfg.addon_versions.kube_proxy},
            # CoreDNS needs nodes to go ACTIVE: created below, after the system node group.
            coredns_addon_options={"enabled": False},
            tags=tags,
            **endpoint_settings(cfg),
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect),
        )
        eks_cluster = self._eks.eks_cluster
        # The cluster's own output, not the plain `cluster_name`: whatever takes it (access
        # entries, add-ons, Pod Identity associations) then waits until the cluster exists.
        self.name = eks_cluster.name
        self.endpoint = eks_cluster.endpoint
        self.security_group_id = eks_cluster.vpc_config.cluster_security_group_id
        self.kubeconfig = pulumi.Output.secret(self._eks.kubeconfig_json)

        # Karpenter nodes join the EKS-managed cluster security group, like the system nodes,
        # so pods on both can reach each other (CoreDNS, webhooks); it is found by this tag.
        aws.ec2.Tag(
            f"{name}-cluster-sg-discovery",
            resource_id=self.security_group_id,
            key=DISCOVERY_TAG,
            value=cluster_name,
            opts=child,
        )

        self._api_access_rules(name, cfg)

        # A stable identifier: a refreshed kubeconfig (new token, new CA) updates the provider
        # instead of replacing it and, with it, every Kubernetes object.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=cluster_name,
            enable_server_side_apply=True,
            # Patch a changed Secret in place (API-key rotation) instead of delete + recreate,
            # which would leave a window with no Secret. pulumi-kubernetes 4.34.2 provider arg.
            enable_secret_mutable=True,
            opts=child,
        )
        # With custom networking, a node that starts before its zone's ENIConfig exists gives
        # its pods IPs from the node subnet: the ENIConfigs come first.
        eni_configs = self._eni_configs(name, network) if network.pod_subnets else []
        self.node_group = self._system_node_group(
            name, cfg, cluster_name, network, tags, after=eni_configs
        )

        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=[self.node_group])
        versions = cfg.addon_versions
        def addon(
            key: str, addon_name: str, version: str, opts: pulumi.ResourceOptions = after_nodes,
            **extra: Any,
        ) -> aws.eks.Addon:
            # Pinned version; OVERWRITE so that settings made by hand converge to this program.
            return aws.eks.Addon(
                f"{name}-{key}",
                cluster_name=self.name,
                addon_name=addon_name,
                addon_version=version,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=tags,
                opts=opts,
                **extra,
            )

        pia = addon("pod-identity-agent", "eks-pod-identity-agent", versions.eks_pod_identity_agent)
        # Pods that use Pod Identity (Karpenter: its EC2 dry run at start) wait for the agent.
        self.pod_identity_agent = pia
        addon(
            "coredns", "coredns", versions.coredns,
            configuration_values=json.dumps(system_addon_placement()),
        )
        ebs_role = pod_identity_role(
            f"{name}-ebs-csi",
            namespace="kube-system",
            service_account=EBS_CSI_SERVICE_ACCOUNT,
            managed_policies=["service-role/AmazonEBSCSIDriverPolicy"],
            tags=tags,
            opts=child,
        )
        ebs = addon(
            "ebs-csi", "aws-ebs-csi-driver", versions.aws_ebs_csi_driver,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group, pia]),
            pod_identity_associations=[
                {"role_arn": ebs_role.role.arn, "service_account": ebs_role.service_account}
            ],
            configuration_values=json.dumps({"controller": system_addon_placement()}),
        )
        sc = gp3_storage_class()
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=sc["metadata"],
            provisioner=sc["provisioner"],
            parameters=sc["parameters"],
            reclaim_policy=sc["reclaimPolicy"],
            volume_binding_mode=sc["volumeBindingMode"],
            allow_volume_expansion=sc["allowVolumeExpansion"],
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs]),
        )

        register_declared_outputs(self)

    def _api_access_rules(self, name: str, cfg: ClusterConfig) -> None:
        """tcp/443 on the EKS-managed cluster security group from the deployer's networks: with
        a private endpoint, that group otherwise admits only itself, and `pulumi up` from a
        runner, VPN or peered network times out on the first Kubernetes object."""
        rules = api_access_rules(cfg)
        for key, rule in rules.items():
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-{key}",
                security_group_id=self.security_group_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                **rule,
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _system_node_group(
        self,
        name: str,
        cfg: ClusterConfig,
        cluster_name: str,
        network: Network,
        tags: dict[str, str],
        after: list[pulumi.Resource],
    ) -> aws.eks.NodeGroup:
        child = pulumi.ResourceOptions(parent=self)
        role, attachments = node_role(f"{name}-system-nodes", tags, self)
        lt = aws.ec2.LaunchTemplate(
            f"{name}-system-nodes",
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                # 2 hops: the AWS VPC CNI and other host-network add-ons read IMDS.
                "http_put_response_hop_limit": 2,
            },
            block_device_mappings=[
                {
                    "device_name": "/dev/xvda",
                    "ebs": {
                        "volume_size": 100,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            tag_specifications=[{"resource_type": "instance", "tags": tags}],
            tags=tags,
            opts=child,
        )
        ng = cfg.system_node_group
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=self._eks.eks_cluster.name,
            node_group_name_prefix=f"{cluster_name}-system-",
            node_role_arn=role.arn,
            subnet_ids=network.private_subnet_ids,
            instance_types=list(ng.instance_types),
            capacity_type="ON_DEMAND",
            ami_type="AL2023_x86_64_STANDARD",
            version=cfg.kubernetes_version,
            scaling_config={
                "min_size": ng.min_size,
                "desired_size": ng.desired_size,
                "max_size": ng.max_size,
            },
            update_config={"max_unavailable": 1},
            launch_template={"id": lt.id, "version": lt.latest_version.apply(str)},
            labels={labels.NODE_CLASS_LABEL: labels.NODE_CLASS_SYSTEM},
            taints=[
                {
                    "key": labels.SYSTEM_TAINT["key"],
                    "value": labels.SYSTEM_TAINT["value"],
                    "effect": "NO_SCHEDULE",
                }
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*attachments, *after],
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

    def _eni_configs(self, name: str, network: Network) -> list[pulumi.Resource]:
        """One ENIConfig per zone, named after the zone (see `eni_config_label_def`)."""
        return [
            k8s.apiextensions.CustomResource(
                f"{name}-eniconfig-{i}",
                api_version="crd.k8s.amazonaws.com/v1alpha1",
                kind="ENIConfig",
                metadata={"name": zone},
                spec={"subnet": subnet_id, "securityGroups": [self.security_group_id]},
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
            for i, (zone, subnet_id) in enumerate(network.pod_subnets)
        ]
