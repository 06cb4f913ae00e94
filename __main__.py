"""llm-platform: an LLM inference platform on EKS, one stack per environment.

AWS (`llm-platform:aws:*`):        config -> Network -> Cluster -> Karpenter (GPU pools)
Kubernetes (`llm-platform:k8s:*`): GpuEnablement, KubeRay, observability -> RayService, with
what its pods use made first (model store, GCS Redis, API keys Secret, NetworkPolicies) and the
optional ALB (Exposure) in front (the README's diagram).

Each component takes keyword arguments only: the part of the config it needs, the components it
builds on, and `ctx` (stack name, cluster name, tags). Where new code goes: docs/architecture.md.
"""

import pulumi

from dashboards import build as dashboard_builder
from dashboards import rules as alert_rules
from infra import config
from infra.config.cost_ceiling import replica_usd_per_hour
from infra.context import StackContext
from infra.foundation.cluster import Cluster
from infra.foundation.karpenter import Karpenter
from infra.foundation.network import Network
from infra.platform.gpu import GpuEnablement
from infra.platform.kuberay import KubeRay
from infra.platform.monitoring import Monitoring
from infra.serving import tenants
from infra.serving.api_keys import ApiKeys, pod_extras, with_keys_file
from infra.serving.exposure import Exposure
from infra.serving.gcs_store import GcsRedis
from infra.serving.model_import import ModelImports
from infra.serving.model_store import ModelStore
from infra.serving.network_policy import RayNetworkPolicies, vpc_ranges
from infra.serving.rayservice import NAMESPACE as SERVING_NAMESPACE
from infra.serving.rayservice import RayPodExtras, RayService, serving_namespace
from infra.serving.vector_db import VectorDatabase, db_subnet_cidrs, with_migration_job

cfg = config.load()
ctx = StackContext.current(cfg)

# ------------------------------------------------------------------------ AWS foundation
network = Network("network", cfg=cfg.network, ctx=ctx)
cluster = Cluster("cluster", cfg=cfg.cluster, network=network, ctx=ctx)
# Observability before Karpenter: it installs the ServiceMonitor CRD that Karpenter's chart uses.
monitoring = Monitoring(
    "monitoring", cfg=cfg.monitoring, cluster=cluster,
    grafana_admin_password=cfg.grafana_admin_password,
    slack_webhook_url=cfg.alertmanager_slack_webhook_url,
    webhook_url=cfg.alertmanager_webhook_url,
    dashboards=dashboard_builder.all_dashboards(),
    # USD per 1M tokens: each model's replica price from its pool and the catalog's prices.
    rule_groups=alert_rules.rule_groups(replica_usd_per_hour=replica_usd_per_hour(
        cfg, pulumi.Config("aws").require("region"))),
)
karpenter = Karpenter(
    "karpenter", cfg=cfg.karpenter, pools=cfg.gpu_node_pools, cluster=cluster, ctx=ctx,
    monitoring_crds=monitoring.release,
)

# --------------------------------------------------------------- platform on the cluster
# One line per component, in the diagram's order: KubeRay, observability, RayService, ...
# They take `provider=cluster.provider` for every Kubernetes object, place pods with
# `infra.labels` (system_scheduling, gpu_worker_scheduling, ray_head_scheduling), and depend on
# `karpenter.controller` so that teardown drains their nodes first.
gpu = GpuEnablement(
    "gpu", gpu_ami_family=cfg.karpenter.gpu_ami_family, provider=cluster.provider,
    gpu_node_pools=karpenter.gpu_node_pools,
)
kuberay = KubeRay(
    "kuberay", provider=cluster.provider, after=[karpenter.controller, monitoring.release]
)
# The Ray pods' namespace first: the model store (weights and serve_app in S3, read through Pod
# Identity) and the GCS Redis (head-failure survival) put what the pods use into it.
serving_ns = serving_namespace("serving-ns", provider=cluster.provider,
                               alb=cfg.exposure.alb.enabled)
model_store = ModelStore(
    "model-store", cfg=cfg.model_store, hf_token=cfg.hugging_face_token, cluster=cluster,
    namespace=SERVING_NAMESPACE, after=[serving_ns], ctx=ctx,
)
if cfg.model_store.imports:  # optional one-shot copies of Hugging Face models into the store
    ModelImports(
        "model-import", cfg=cfg.model_store, store=model_store, provider=cluster.provider,
        hf_token=cfg.hugging_face_token is not None, namespace=SERVING_NAMESPACE, ctx=ctx,
        after=[serving_ns, *karpenter.node_pools.values()],
    )
gcs_redis = GcsRedis(
    "gcs", cfg=cfg.gcs_fault_tolerance, auth_token=cfg.redis_auth_token, cluster=cluster,
    network=network, namespace=SERVING_NAMESPACE, after=[serving_ns], ctx=ctx,
)
# The API keys Secret and the Ray pods' NetworkPolicies, also in force before the first pod.
api_keys = ApiKeys(
    "api-keys", keys=cfg.api_keys or {}, tenants=cfg.tenants, namespace=SERVING_NAMESPACE,
    after=[serving_ns], provider=cluster.provider,
)
ray_policies = RayNetworkPolicies(
    "ray-network", namespace=SERVING_NAMESPACE, after=[serving_ns], provider=cluster.provider,
    operator_namespace=kuberay.namespace, prometheus_namespace=monitoring.namespace,
    vpc_cidrs=vpc_ranges(cfg.network), redis_pods=gcs_redis.in_cluster_pods,
)
# RAG (serving.rag.enabled): Aurora PostgreSQL + pgvector in the private subnets, and the
# in-cluster schema migration Job, done before the RayService rolls out code that needs it.
vector_db = VectorDatabase(
    "vector-db", rag=cfg.rag, cluster=cluster, cluster_security_group_id=cluster.security_group_id,
    vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
    db_cidrs=db_subnet_cidrs(cfg.network), provider=cluster.provider,
    namespace=SERVING_NAMESPACE, pods_role_name=model_store.role_name,
    code_uri=model_store.code_uri, code_key_arn=model_store.key_arn,
    code_version=model_store.code_version, ctx=ctx,
    after=[serving_ns, model_store, *karpenter.node_pools.values()],
) if cfg.serving.rag.enabled else None
serving = RayService(
    "serving", cfg=with_migration_job(with_keys_file(cfg)) if vector_db else with_keys_file(cfg),
    provider=cluster.provider, operator=kuberay.release,
    namespace=serving_ns,
    extras=RayPodExtras.merge(model_store.pod_extras(), gcs_redis.pod_extras(), pod_extras(),
                              tenants.pod_extras(cfg.serving.tenants, gcs_redis.address),
                              *([vector_db.pod_extras()] if vector_db else [])),
    after=[*karpenter.node_pools.values(), *gpu.releases.values(), model_store, gcs_redis,
           api_keys.secret, *ray_policies.policies,
           *([vector_db.job, *vector_db.policies, *vector_db.grants] if vector_db else [])],
)
# Optional ALB (AWS Load Balancer Controller) to KubeRay's serve Service.
edge = Exposure(
    "edge", alb=cfg.exposure.alb, serving=cfg.serving, cluster=cluster,
    namespace=serving.namespace, service=serving.serve_service, vpc_id=network.vpc_id,
    vpc_cidrs=vpc_ranges(cfg.network), ctx=ctx, depends_on=[serving.resource],
)

# ---------------------------------------------------------------------------- outputs
pulumi.export("clusterName", cluster.name)
pulumi.export("kubeconfig", cluster.kubeconfig)  # secret
pulumi.export("vpcId", network.vpc_id)
pulumi.export("privateSubnetIds", network.private_subnet_ids)
pulumi.export("interruptionQueue", karpenter.queue_name)
pulumi.export("gpuNodePools", [p.name for p in cfg.gpu_node_pools])
pulumi.export("serveService", f"{serving.namespace}/{serving.serve_service}")
pulumi.export("modelStoreBucket", model_store.bucket_name)
pulumi.export("servingCodeUri", model_store.code_uri)
if vector_db is not None:
    pulumi.export("ragDatabaseEndpoint", vector_db.endpoint)
    pulumi.export("ragDatabaseSecretArn", vector_db.secret_arn)
