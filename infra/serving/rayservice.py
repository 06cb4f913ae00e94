"""The RayService that serves `serve_app` on the GPU pools, built from the typed stack config.

Pure builders (`rayservice`, `ray_cluster_config`, `serve_config_v2`, ...) return dicts that the
tests validate against KubeRay 1.7.0's CRD and Ray's own `ServeDeploySchema`; `RayService` applies
the result through the cluster's provider.

Shape of the Ray cluster:
- head: CPU-only (`num-cpus: "0"`, so no replica or task ever lands on it), on the `ray-head`
  Karpenter pool, requests == limits; `excludeHeadPodFromServeSvc` keeps it out of the Service.
- `ingress` worker group: CPU pods for the gateway's ingress replicas, on the same `ray-head`
  pool (on-demand CPU, no taint: one small CPU pool serves both, so the aws side needs no
  second NodePool), from zero. It declares the custom Ray resource `INGRESS_RESOURCE`, which the
  ingress replicas require (serve_applications(..., ingress_resources=...)), so they never land
  on a GPU node and GPU nodes host only LLMServer replicas.
- one GPU worker group per GPU pool that a model uses, named after the pool, from zero: GPUs per
  pod = the largest gpusPerReplica of its models, CPU/memory a share of the pool's smallest
  instance that holds them (infra/capacity/fit.py), max pods = the pool's GPU limit / GPUs per pod,
  so a model's change never touches the group. The group declares `accelerator_type:<GPU>` in
  `rayStartParams.resources`: Ray Serve LLM asks for exactly that, and the autoscaler starts a
  group from zero only for resources the group declares (kuberay#863).
- every Ray container: the pinned ray-llm image, `cluster_env(serving)` plus the extras' env.

In place vs new cluster (KubeRay v1.7.0, rayservice_controller.go `shouldPrepareNewCluster`,
utils/util.go `GenerateHashWithoutReplicasAndWorkersToDelete`): a change to `rayClusterConfig`
other than replica bounds, tolerations or worker groups appended at the end starts a new cluster
(`NewCluster`) or is not applied at all (`None`); `serveConfigV2` changes are always in place.
Everything a platform team changes weekly (aliases, models on an existing pool, autoscaling,
engine args) lives in `serveConfigV2` only. `in_place()` applies the same rule to two renders.

Extension point for the other components (model store, secrets, exposure): `RayPodExtras`.
Every field is applied to the head and to every worker group:
- `service_account_name`: the Ray pods' ServiceAccount (e.g. for EKS Pod Identity);
- `env`: Kubernetes EnvVar dicts (`{"name", "value"}` or `{"name", "valueFrom"}`);
- `volumes` / `volume_mounts`: pod volumes and their mounts in the Ray container;
- `gcs_fault_tolerance`: the RayCluster `gcsFaultToleranceOptions` (e.g. Redis address and a
  `redisPassword.valueFrom.secretKeyRef`);
- `working_dir`: goes into every Serve application's `runtime_env.working_dir` (a zip URI);
- `pod_labels`: extra labels on every Ray pod.
Combine several with `RayPodExtras.merge(a, b)`. Ray pods always carry KubeRay's own `ray.io/*`
labels plus `labels.SCRAPE_LABEL: ray`, so monitors and NetworkPolicies can select them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import labels, versions
from infra.capacity import fit as capacity
from infra.component import register_declared_outputs
from infra.config import StackConfig
from infra.serving.timeouts import connection_timeouts
from serve_app.serve_config import cluster_env, serve_applications

API_VERSION = "ray.io/v1"
KIND = "RayService"
NAMESPACE = "serving"
NAME = "llm-platform"  # KubeRay: at most 47 characters (it derives Service names from it)
INGRESS_GROUP = "ingress"
INGRESS_RESOURCE = "llm_platform_ingress"
# Plenty: ingress replicas per pod are bounded by the pod's CPUs, not by this.
INGRESS_RESOURCE_PER_POD = 1000
SCRAPE_VALUE = "ray"
SERVE_PORT = 8000
INITIALIZING_TIMEOUT_ANNOTATION = "ray.io/initializing-timeout"
# Margin on the estimated start-up of the largest model: the timeout is terminal when it fires.
INITIALIZING_TIMEOUT_MARGIN = 2.0
AUTOSCALER_RESOURCES = {"cpu": "500m", "memory": "1Gi"}


@dataclass(frozen=True)
class RayPodExtras:
    """What other components add to every Ray pod (see the module docstring)."""

    service_account_name: str | None = None
    env: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    gcs_fault_tolerance: dict[str, Any] | None = None
    working_dir: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def merge(*extras: RayPodExtras) -> RayPodExtras:
        """One set of extras from several; a scalar set twice is an error, not a silent win."""
        def one(name: str) -> Any:
            values = [getattr(e, name) for e in extras if getattr(e, name) is not None]
            if len(values) > 1:
                raise ValueError(f"RayPodExtras.{name} is set by more than one component")
            return values[0] if values else None

        return RayPodExtras(
            service_account_name=one("service_account_name"),
            env=[v for e in extras for v in e.env],
            volumes=[v for e in extras for v in e.volumes],
            volume_mounts=[v for e in extras for v in e.volume_mounts],
            gcs_fault_tolerance=one("gcs_fault_tolerance"),
            working_dir=one("working_dir"),
            pod_labels={k: v for e in extras for k, v in e.pod_labels.items()},
        )


# ------------------------------------------------------------------------------ worker groups
@dataclass(frozen=True)
class GpuGroup:
    """One GPU worker group: a GPU pool and the pods Ray runs on it."""

    pool: str
    accelerator: str  # the GPU as Ray names it (L40S, A10G, A100)
    shape: capacity.PodShape
    max_replicas: int
    models: tuple[str, ...]


def gpu_groups(cfg: StackConfig) -> list[GpuGroup]:
    """One group per GPU pool that a model uses, in the order of `gpuNodePools`."""
    out = []
    for pool in cfg.gpu_node_pools:
        shape = capacity.pool_pod_shape(pool, cfg.serving.models, cfg.gpu_node_pools)
        if shape is None:
            continue
        models = tuple(
            m.id for m in cfg.serving.models
            if capacity.resolve_pool(m, cfg.gpu_node_pools)[0] is pool
        )
        out.append(GpuGroup(
            pool=pool.name,
            accelerator=capacity.pool_gpu(pool),
            shape=shape,
            max_replicas=pool.limits.gpus // shape.gpus,
            models=models,
        ))
    return out


def ingress_max_replicas(cfg: StackConfig) -> int:
    """Ingress pods the shared CPU pool can hold next to the head (its vCPU limit)."""
    rs = cfg.ray_service
    return max(1, (cfg.karpenter.head_pool_cpu_limit - rs.head.cpu) // rs.ingress_workers.cpu)


def _ray_resources(resources: dict[str, float]) -> str:
    """`rayStartParams.resources`: a JSON object, quoted, the way KubeRay passes it to `ray start`
    and Ray's KubeRay autoscaler reads it back (strip one character each side, drop `\\`)."""
    return json.dumps(json.dumps(resources))


# --------------------------------------------------------------------------------- pod specs
def _pod_labels(extras: RayPodExtras) -> dict[str, str]:
    return {**extras.pod_labels, labels.SCRAPE_LABEL: SCRAPE_VALUE}


def _env(cfg: StackConfig, extras: RayPodExtras) -> list[dict[str, Any]]:
    own = [{"name": k, "value": v} for k, v in sorted(cluster_env(cfg.serving).items())]
    return own + list(extras.env)


def _container(
    name: str, cfg: StackConfig, extras: RayPodExtras, resources: dict[str, Any],
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": versions.RAY_LLM_IMAGE.ref,
        "imagePullPolicy": "IfNotPresent",
        # Requests == limits: Guaranteed QoS, and Ray counts exactly what the pod holds.
        "resources": {"requests": dict(resources), "limits": dict(resources)},
    }
    env = _env(cfg, extras)
    if env:
        container["env"] = env
    if ports:
        container["ports"] = ports
    if extras.volume_mounts:
        container["volumeMounts"] = list(extras.volume_mounts)
    return container


def _template(
    container: dict[str, Any], scheduling: dict[str, Any], extras: RayPodExtras
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container], "nodeSelector": scheduling["nodeSelector"]}
    if scheduling["tolerations"]:
        spec["tolerations"] = scheduling["tolerations"]
    if extras.service_account_name:
        spec["serviceAccountName"] = extras.service_account_name
    if extras.volumes:
        spec["volumes"] = list(extras.volumes)
    return {"metadata": {"labels": _pod_labels(extras)}, "spec": spec}


def head_group(cfg: StackConfig, extras: RayPodExtras) -> dict[str, Any]:
    head = cfg.ray_service.head
    ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265},
        {"name": "client", "containerPort": 10001},
        {"name": "serve", "containerPort": SERVE_PORT},
    ]
    resources = {"cpu": str(head.cpu), "memory": f"{head.memory_gib}Gi"}
    return {
        # No logical CPUs: the GCS and the Serve controller keep the head to themselves.
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": _template(
            _container("ray-head", cfg, extras, resources, ports),
            labels.ray_head_scheduling(), extras,
        ),
    }


def ingress_group(cfg: StackConfig, extras: RayPodExtras) -> dict[str, Any]:
    size = cfg.ray_service.ingress_workers
    resources = {"cpu": str(size.cpu), "memory": f"{size.memory_gib}Gi"}
    return {
        "groupName": INGRESS_GROUP,
        "minReplicas": 0,
        "maxReplicas": ingress_max_replicas(cfg),
        "rayStartParams": {
            "resources": _ray_resources({INGRESS_RESOURCE: INGRESS_RESOURCE_PER_POD})
        },
        "template": _template(
            _container("ray-worker", cfg, extras, resources),
            labels.ray_head_scheduling(), extras,
        ),
    }


def gpu_group(group: GpuGroup, cfg: StackConfig, extras: RayPodExtras) -> dict[str, Any]:
    shape = group.shape
    resources = {
        "cpu": str(shape.cpu),
        "memory": f"{shape.memory_gib}Gi",
        "nvidia.com/gpu": str(shape.gpus),
    }
    return {
        "groupName": group.pool,
        "minReplicas": 0,
        "maxReplicas": group.max_replicas,
        "rayStartParams": {
            # What Ray Serve LLM asks for (`accelerator_type:L40S`), so that the autoscaler can
            # start this group from zero for it.
            "resources": _ray_resources({f"accelerator_type:{group.accelerator}": 1})
        },
        "template": _template(
            _container("ray-worker", cfg, extras, resources),
            labels.gpu_worker_scheduling(group.pool), extras,
        ),
    }


# ------------------------------------------------------------------------------- the objects
def ray_cluster_config(cfg: StackConfig, extras: RayPodExtras | None = None) -> dict[str, Any]:
    """`spec.rayClusterConfig`: everything that, when changed, may start a new cluster."""
    extras = extras or RayPodExtras()
    out: dict[str, Any] = {
        "rayVersion": versions.RAY_VERSION,
        # Ray token auth (Ray >= 2.52): without it anyone who reaches the dashboard or GCS can run
        # code on the cluster. KubeRay 1.7 creates the token Secret, sets it on every Ray
        # container and sends it with its own dashboard calls (serveConfigV2 updates). Serve's
        # HTTP traffic is not gated by it (the API keys are).
        "authOptions": {"mode": "token"},
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "version": "v2",
            "idleTimeoutSeconds": cfg.ray_service.autoscaler_idle_timeout_seconds,
            "upscalingMode": "Default",
            "resources": {
                "requests": dict(AUTOSCALER_RESOURCES),
                "limits": dict(AUTOSCALER_RESOURCES),
            },
        },
        "headGroupSpec": head_group(cfg, extras),
        "workerGroupSpecs": [ingress_group(cfg, extras)]
        + [gpu_group(g, cfg, extras) for g in gpu_groups(cfg)],
    }
    if extras.gcs_fault_tolerance:
        out["gcsFaultToleranceOptions"] = dict(extras.gcs_fault_tolerance)
    return out


def serve_config_v2(cfg: StackConfig, extras: RayPodExtras | None = None) -> dict[str, Any]:
    """The Serve config KubeRay PUTs to the dashboard: `serve_applications(serving)`, with the
    ingress pinned to the CPU group and the extras' working_dir."""
    extras = extras or RayPodExtras()
    apps = serve_applications(cfg.serving, ingress_resources={INGRESS_RESOURCE: 1})
    if extras.working_dir:
        for app in apps:
            app["runtime_env"] = {**app.get("runtime_env", {}), "working_dir": extras.working_dir}
    return {
        # Every node runs a proxy: KubeRay marks workers ready via their proxy's /-/healthz,
        # and HeadOnly would keep them unready for good (kuberay#4994).
        "proxy_location": "EveryNode",
        # Idle connections outlive the ALB's idle timeout (infra/serving/timeouts.py: else 502s).
        "http_options": {
            "host": "0.0.0.0", "port": SERVE_PORT,
            "keep_alive_timeout_s": connection_timeouts(
                cfg.exposure.alb.idle_timeout_s).serve_keep_alive_s,
        },
        "applications": apps,
    }


def initializing_timeout_seconds(cfg: StackConfig) -> int:
    """Start-up budget of the largest model: node + image + engine overhead plus its weights at
    the configured load rate, times a margin; whole minutes."""
    rs = cfg.ray_service
    weights_gib = 0.0
    for m in cfg.serving.models:
        facts = capacity.model_facts(m)
        gib = capacity.weights_gib(m, facts) if facts is not None else None
        weights_gib = max(weights_gib, gib or 0.0)
    seconds = (rs.startup_overhead_seconds + weights_gib / rs.weights_load_gib_per_second)
    return math.ceil(seconds * INITIALIZING_TIMEOUT_MARGIN / 60) * 60


def rayservice(cfg: StackConfig, extras: RayPodExtras | None = None) -> dict[str, Any]:
    """The whole RayService object."""
    timeout = f"{initializing_timeout_seconds(cfg)}s"
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            # Terminal when it fires: the RayService is marked failed and its clusters deleted;
            # recreate it to retry (docs/rayservice.md).
            "annotations": {INITIALIZING_TIMEOUT_ANNOTATION: timeout},
        },
        "spec": {
            "upgradeStrategy": {"type": cfg.ray_service.upgrade_strategy},
            # The old cluster outlives the ALB's deregistration delay after a NewCluster switch
            # (KubeRay's default, 60 s, cuts longer streams; infra/serving/timeouts.py).
            "rayClusterDeletionDelaySeconds": connection_timeouts(
                cfg.exposure.alb.idle_timeout_s).cluster_deletion_delay_s,
            "excludeHeadPodFromServeSvc": True,
            "serveConfigV2": yaml.safe_dump(serve_config_v2(cfg, extras), sort_keys=False),
            "rayClusterConfig": ray_cluster_config(cfg, extras),
        },
    }


# ------------------------------------------------------------------------- in place or not
def _hash_view(cluster: dict[str, Any]) -> dict[str, Any]:
    """The part of a rayClusterConfig KubeRay v1.7.0 hashes to decide on a new cluster: it mutes
    replicas, min/maxReplicas, workersToDelete, tolerations, schedulingGates, upgradeStrategy
    and suspend (utils/util.go GenerateHashWithoutReplicasAndWorkersToDelete)."""
    out = json.loads(json.dumps(cluster))
    out.pop("upgradeStrategy", None)
    out.pop("suspend", None)
    out["headGroupSpec"]["template"]["spec"].pop("tolerations", None)
    out["headGroupSpec"]["template"]["spec"].pop("schedulingGates", None)
    for group in out.get("workerGroupSpecs", []):
        for key in ("replicas", "minReplicas", "maxReplicas"):
            group.pop(key, None)
        group.get("scaleStrategy", {}).pop("workersToDelete", None)
        group["template"]["spec"].pop("tolerations", None)
        group["template"]["spec"].pop("schedulingGates", None)
    return out


def in_place(old: dict[str, Any], new: dict[str, Any]) -> str:
    """How KubeRay 1.7.0 applies `new` over `old` (two rayClusterConfig dicts): "unchanged",
    "in place" (only fields it updates in place, or worker groups appended at the end) or
    "new cluster" (under `upgradeStrategy: None`: not applied at all)."""
    if old == new:
        return "unchanged"
    a, b = _hash_view(old), _hash_view(new)
    if a == b:
        return "in place"
    n = len(old.get("workerGroupSpecs", []))
    if len(b.get("workerGroupSpecs", [])) > n:
        b["workerGroupSpecs"] = b["workerGroupSpecs"][:n]
        if a == b:
            return "in place"
    return "new cluster"


# The AWS Load Balancer Controller adds its readiness gate only to pods of namespaces labelled
# so (its docs, deploy/pod_readiness_gate.md): a pod counts as Ready only once the ALB has found
# its target healthy, so a NewCluster switch never sends requests to targets still registering.
READINESS_GATE_LABEL = {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}


def namespace_metadata(alb: bool) -> dict[str, Any]:
    """The serving namespace's metadata; with the ALB, the readiness gate label."""
    meta: dict[str, Any] = {"name": NAMESPACE}
    if alb:
        meta["labels"] = dict(READINESS_GATE_LABEL)
    return meta


def serving_namespace(
    name: str, *, provider: k8s.Provider, alb: bool = False
) -> k8s.core.v1.Namespace:
    """The Ray pods' namespace, made before the RayService so that the components whose objects
    the pods use (ServiceAccount, Secrets, the dev GCS Redis) can create them in it first;
    `alb`: the ALB is on (the readiness gate label)."""
    return k8s.core.v1.Namespace(
        name, metadata=namespace_metadata(alb), opts=pulumi.ResourceOptions(provider=provider)
    )


# ---------------------------------------------------------------------------------- component
class RayService(pulumi.ComponentResource):
    """The serving RayService, applied through the cluster's provider."""

    namespace: str
    name: str
    serve_service: str  # `<name>-serve-svc`, KubeRay's Service in front of the Serve proxies
    resource: k8s.apiextensions.CustomResource

    def __init__(
        self,
        name: str,
        *,
        cfg: StackConfig,
        provider: k8s.Provider,
        operator: pulumi.Resource,
        after: Sequence[pulumi.Resource] = (),
        extras: RayPodExtras | None = None,
        namespace: k8s.core.v1.Namespace | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`operator`: the KubeRay release; `after`: what must outlive the Ray pods on teardown
        (the NodePools they run on, the GPU device plugin); `namespace`: one made beforehand by
        `serving_namespace` (else created here)."""
        super().__init__("llm-platform:k8s:RayService", name, None, opts)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=provider)
        ns = namespace or k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": NAMESPACE}, opts=k8s_child
        )
        obj = rayservice(cfg, extras)
        self.resource = k8s.apiextensions.CustomResource(
            f"{name}-rayservice",
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            metadata=obj["metadata"],
            spec=obj["spec"],
            opts=pulumi.ResourceOptions.merge(
                k8s_child,
                # Created after the operator (its CRD and webhook), deleted before it, so the
                # operator is still there to delete the RayCluster and its pods.
                pulumi.ResourceOptions(depends_on=[ns, operator, *after]),
            ),
        )
        self.namespace = NAMESPACE
        self.name = NAME
        self.serve_service = f"{NAME}-serve-svc"
        register_declared_outputs(self)
