"""Head-failure survival: the Redis that keeps Ray's GCS state (RayService
`gcsFaultToleranceOptions`), so that a head pod restart keeps the Serve applications and the
workers (they reconnect within `RAY_gcs_rpc_server_reconnect_timeout_s`, 600 s with GCS FT).

- staging / prod (`backend: elasticache`): an ElastiCache replication group: Multi-AZ with
  automatic failover, TLS in transit (`rediss://`), encrypted at rest, an auth token, in the
  private subnets, reachable on 6379 only from the cluster security group (the nodes' and
  therefore the pods' group). A managed Multi-AZ Redis keeps its address across a failover,
  which matters: Ray's GCS loops when its Redis moves (ray#64241).
- dev (`backend: inCluster`): one Redis pod (StatefulSet with an encrypted gp3 volume, AOF on)
  in the Ray namespace, password-protected, on the system nodes.
- `external`: an existing Redis at `externalAddress`.

The password is `redisAuthToken` (a Pulumi secret) or, if unset, a random one generated once and
kept in the state as a secret; either way it reaches the pods only through a Kubernetes Secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import SecretStr

from infra import labels
from infra.component import register_declared_outputs
from infra.config.gcs_fault_tolerance import GcsFaultToleranceConfig, InClusterRedisConfig
from infra.context import StackContext
from infra.foundation.cluster import Cluster
from infra.foundation.network import Network
from infra.serving.rayservice import INGRESS_GROUP, RayPodExtras
from infra.versions import REDIS_IMAGE

REDIS_PORT = 6379
PASSWORD_SECRET = "gcs-redis"
PASSWORD_KEY = "password"
IN_CLUSTER_NAME = "gcs-redis"
_APP_LABELS = {"app.kubernetes.io/name": "gcs-redis", "app.kubernetes.io/part-of": "llm-platform"}


# ------------------------------------------------------------------------------ pure builders
def fault_tolerance_options(address: pulumi.Input[str]) -> dict[str, Any]:
    """RayService `rayClusterConfig.gcsFaultToleranceOptions`: the address and the password by
    reference (KubeRay 1.7.0 CRD; with these set, no RAY_REDIS_ADDRESS / ft annotation)."""
    return {
        "backend": "redis",
        "redisAddress": address,
        "redisPassword": {
            "valueFrom": {"secretKeyRef": {"name": PASSWORD_SECRET, "key": PASSWORD_KEY}}
        },
    }


def replication_group_id(cluster_name: str) -> str:
    """ElastiCache ids: at most 40 characters, lowercase, starting with a letter."""
    rid = f"{cluster_name}-gcs"
    if len(rid) > 40:
        raise ValueError(f"replication group id {rid!r} is longer than 40 characters")
    return rid


def redis_statefulset(namespace: str, cfg: InClusterRedisConfig) -> dict[str, Any]:
    """One password-protected Redis with append-only persistence on its own volume."""
    probe = {
        "exec": {"command": ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping']},
        "periodSeconds": 10,
        "timeoutSeconds": 3,
    }
    sched = labels.system_scheduling()
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": namespace, "labels": _APP_LABELS},
        "spec": {
            "serviceName": IN_CLUSTER_NAME,
            "replicas": 1,
            "selector": {"matchLabels": _APP_LABELS},
            "template": {
                "metadata": {"labels": _APP_LABELS},
                "spec": {
                    "nodeSelector": sched["nodeSelector"],
                    "tolerations": sched["tolerations"],
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999,
                        "fsGroup": 999, "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "redis",
                        "image": REDIS_IMAGE.ref,
                        "args": [
                            "--requirepass", "$(REDIS_PASSWORD)",
                            "--appendonly", "yes",
                            "--dir", "/data",
                            "--protected-mode", "no",  # password-protected; reached via Service
                        ],
                        "env": [{
                            "name": "REDIS_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": PASSWORD_SECRET,
                                                           "key": PASSWORD_KEY}},
                        }],
                        "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
                        "readinessProbe": probe,
                        "livenessProbe": {**probe, "initialDelaySeconds": 30},
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "512Mi"},
                            "limits": {"memory": "512Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": cfg.storage_class,
                    "resources": {"requests": {"storage": f"{cfg.storage_gib}Gi"}},
                },
            }],
        },
    }


def redis_service(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": namespace, "labels": _APP_LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": _APP_LABELS,
            "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}],
        },
    }


def redis_pdb(namespace: str) -> dict[str, Any]:
    """A voluntary eviction of the only Redis pod takes the GCS down with it (it exits when its
    Redis goes away): block evictions of a healthy Redis, so that a node drain waits for
    someone to move it deliberately; an unhealthy one may always be evicted."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": IN_CLUSTER_NAME, "namespace": namespace, "labels": _APP_LABELS},
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": _APP_LABELS},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


# KubeRay's pod labels (ray-operator/controllers/ray/utils/constant.go, v1.7.0).
RAY_NODE_TYPE_LABEL = "ray.io/node-type"
RAY_GROUP_LABEL = "ray.io/group"


def ray_disruption_budgets(namespace: str, ingress_group: str) -> list[dict[str, Any]]:
    """PodDisruptionBudgets for the Ray pods that voluntary evictions (Karpenter consolidation
    and drift of the CPU pool, node drains) could take down together. They do not slow Ray's
    own scale-down: the autoscaler deletes pods through `workersToDelete`, not by eviction.
    - head: never evicted while healthy; a head restart is survivable with GCS FT, but it
      still pauses the control plane, so it should happen deliberately.
    - ingress workers: at most one at a time, so the gateway keeps serving during a drain.
    GPU workers get none: their pools consolidate only when empty, and a spot interruption
    ignores PDBs anyway."""
    def pdb(name: str, selector: dict[str, str], **rule: Any) -> dict[str, Any]:
        return {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/part-of": "llm-platform"}},
            "spec": {"selector": {"matchLabels": selector},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow", **rule},
        }

    return [
        pdb("ray-head", {RAY_NODE_TYPE_LABEL: "head"}, minAvailable=1),
        pdb(f"ray-{ingress_group}", {RAY_NODE_TYPE_LABEL: "worker",
                                      RAY_GROUP_LABEL: ingress_group}, maxUnavailable=1),
    ]


# The image's system CA bundle (Ubuntu's ca-certificates, in rayproject/ray-llm images).
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def tls_env(tls: bool) -> list[dict[str, Any]]:
    """`RAY_REDIS_CA_CERT` for a `rediss://` Redis: Ray's GCS builds its TLS context from
    RAY_REDIS_CA_CERT / RAY_REDIS_CA_PATH or from nothing (ray src/ray/gcs/store_client/
    redis_context.cc), and then fails ElastiCache's certificate with CERTIFICATE_VERIFY_FAILED
    (ray issue #41161, kuberay issue #1640; fixed there by pointing it at the CA bundle)."""
    return [{"name": "RAY_REDIS_CA_CERT", "value": CA_BUNDLE}] if tls else []


def in_cluster_address(namespace: str) -> str:
    return f"redis://{IN_CLUSTER_NAME}.{namespace}.svc.cluster.local:{REDIS_PORT}"


# --------------------------------------------------------------------------------- component
class GcsRedis(pulumi.ComponentResource):
    """The GCS Redis of one stack. Outputs: `address`, `options` (the RayService's
    `gcsFaultToleranceOptions`, a dict whose address may be an Output: Pulumi resolves it inside
    the CustomResource's spec); both None when `backend: off`."""

    address: pulumi.Output[str] | None
    options: dict[str, Any] | None
    in_cluster_pods: dict[str, str] | None  # the in-cluster Redis pods' labels (dev)

    def __init__(
        self,
        name: str,
        *,
        cfg: GcsFaultToleranceConfig,
        auth_token: SecretStr | None,
        cluster: Cluster,
        network: Network,
        namespace: str,
        ctx: StackContext,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`namespace`: the Ray pods' (the password Secret, the dev Redis and the Ray PDBs go
        there); `after`: what those must wait for (the namespace object)."""
        token = "llm-platform:k8s:GcsRedis" if cfg.backend == "inCluster" \
            else "llm-platform:aws:GcsRedis"
        super().__init__(token, name, None, opts)
        self.address = None
        self.options = None
        self.in_cluster_pods = None
        self._tls = False
        cluster_name, tags, provider = ctx.cluster_name, ctx.tags, cluster.provider
        # Every resource names the cluster or lives in it: created after it, destroyed first.
        after_cluster: list[pulumi.Resource] = [cluster, *after]
        child = pulumi.ResourceOptions(parent=self, depends_on=after_cluster)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=after_cluster)
        for pdb in ray_disruption_budgets(namespace, INGRESS_GROUP):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{pdb['metadata']['name']}", metadata=pdb["metadata"], spec=pdb["spec"],
                opts=k8s_opts,
            )
        if cfg.backend == "off":
            register_declared_outputs(self)
            return

        password: pulumi.Output[str]
        if auth_token is not None:
            password = pulumi.Output.secret(auth_token.get_secret_value())
        else:
            # Letters and digits only: valid for ElastiCache and needs no quoting anywhere.
            password = random.RandomPassword(
                f"{name}-password", length=32, special=False, opts=child
            ).result
        secret = k8s.core.v1.Secret(
            f"{name}-password",
            metadata={"name": PASSWORD_SECRET, "namespace": namespace, "labels": _APP_LABELS},
            type="Opaque",
            string_data={PASSWORD_KEY: password},
            opts=k8s_opts,
        )

        address: pulumi.Output[str]
        if cfg.backend == "elasticache":
            address = self._elasticache(
                name, cfg, password, cluster_name, cluster.security_group_id, network.vpc_id,
                network.private_subnet_ids, tags, child,
            )
        elif cfg.backend == "inCluster":
            self._in_cluster(name, cfg.in_cluster, namespace, secret, k8s_opts)
            address = pulumi.Output.from_input(in_cluster_address(namespace))
            self.in_cluster_pods = dict(_APP_LABELS)
        else:
            address = pulumi.Output.from_input(str(cfg.external_address))
        self._tls = cfg.backend == "elasticache" or str(cfg.external_address or "").startswith(
            "rediss://")

        self.address = address
        self.options = fault_tolerance_options(address)
        register_declared_outputs(self)

    def _elasticache(
        self, name: str, cfg: GcsFaultToleranceConfig, password: pulumi.Output[str],
        cluster_name: str, cluster_sg: pulumi.Input[str], vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]], tags: dict[str, str], child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        ec = cfg.elasticache
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=f"{cluster_name}-gcs",
            description=f"Private subnets of the GCS Redis of {cluster_name}",
            subnet_ids=subnet_ids,
            tags=tags,
            opts=child,
        )
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name=f"{cluster_name}-gcs-redis",
            description=f"GCS Redis of {cluster_name}: 6379 from the cluster security group only",
            vpc_id=vpc_id,
            tags=tags,
            opts=child,
        )
        # Ingress only; no egress rule (Redis opens no connections, and SGs are stateful).
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster",
            security_group_id=sg.id,
            referenced_security_group_id=cluster_sg,
            ip_protocol="tcp",
            from_port=REDIS_PORT,
            to_port=REDIS_PORT,
            description="Ray GCS on the cluster's nodes and pods",
            tags=tags,
            opts=child,
        )
        group = aws.elasticache.ReplicationGroup(
            f"{name}-redis",
            replication_group_id=replication_group_id(cluster_name),
            description=f"Ray GCS fault tolerance for {cluster_name}",
            engine="redis",
            engine_version=ec.engine_version,
            node_type=ec.node_type,
            port=REDIS_PORT,
            num_cache_clusters=ec.replicas + 1,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            auth_token=password,
            auth_token_update_strategy="ROTATE",
            subnet_group_name=subnets.name,
            security_group_ids=[sg.id],
            snapshot_retention_limit=ec.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            tags=tags,
            opts=child,
        )
        return pulumi.Output.concat("rediss://", group.primary_endpoint_address, f":{REDIS_PORT}")

    def _in_cluster(
        self, name: str, cfg: InClusterRedisConfig, namespace: str, secret: k8s.core.v1.Secret,
        opts: pulumi.ResourceOptions,
    ) -> None:
        after_secret = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            depends_on=[secret]))
        sts = redis_statefulset(namespace, cfg)
        k8s.apps.v1.StatefulSet(
            f"{name}-redis", metadata=sts["metadata"], spec=sts["spec"], opts=after_secret
        )
        svc = redis_service(namespace)
        k8s.core.v1.Service(f"{name}-redis", metadata=svc["metadata"], spec=svc["spec"],
                            opts=opts)
        pdb = redis_pdb(namespace)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-redis", metadata=pdb["metadata"], spec=pdb["spec"], opts=opts
        )

    def pod_extras(self) -> RayPodExtras:
        """The RayService's gcsFaultToleranceOptions (none when `backend: off`), and over TLS
        the CA bundle the GCS verifies the Redis certificate with."""
        return RayPodExtras(gcs_fault_tolerance=self.options, env=tls_env(self._tls))
