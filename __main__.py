"""llm-platform: an LLM inference platform on EKS, one stack per environment.

config -> network -> cluster -> karpenter (GPU pools) -> GPU enablement -> KubeRay ->
observability -> RayService.
"""

import pulumi

from infra import config
from infra.cluster import Cluster
from infra.gpu import GpuEnablement
from infra.karpenter import Karpenter
from infra.network import Network

cfg = config.load()
# One name for the cluster, its subnets' discovery tag, the interruption queue and the IAM scope.
cluster_name = f"{config.PROJECT}-{pulumi.get_stack()}"
tags = {"llm-platform.io/stack": pulumi.get_stack(), **cfg.tags}

# ------------------------------------------------------------------------ AWS foundation
network = Network("network", cfg.network, cluster_name, tags)
cluster = Cluster("cluster", cfg.cluster, cfg.network, network, cluster_name, tags)
karpenter = Karpenter("karpenter", cfg.karpenter, cfg.gpu_node_pools, cluster, cluster_name, tags)
gpu = GpuEnablement("gpu", cfg.karpenter, cluster)

# --------------------------------------------------------------- platform on the cluster
# KubeRay, observability and the RayService go here. They use `cluster.provider` for every
# Kubernetes object, `infra.labels` to place pods (system_scheduling, gpu_worker_scheduling,
# ray_head_scheduling), and depend on `karpenter.controller` so teardown drains them first.

# ---------------------------------------------------------------------------- outputs
pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)  # secret
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("interruptionQueue", karpenter.queue_name)
pulumi.export("gpuNodePools", [p.name for p in cfg.gpu_node_pools])
