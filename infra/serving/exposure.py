"""How clients reach Ray Serve: KubeRay's serve Service, and an optional ALB in front of it.

The Service is KubeRay's own `<rayservice>-serve-svc` (port `serve`, 8000), not one of ours:
KubeRay points it at the cluster that currently serves and switches it during an upgrade, which a
Service of ours could not follow (its selector would also match the pods of the cluster being
replaced). The ALB is an Ingress of class `alb` with target type `ip`: the controller registers
that Service's endpoints, i.e. the Serve pods themselves, so no NodePort is opened on any node.

Only the Serve port is ever a backend: the dashboard (8265), GCS (6379), client (10001) and
metrics (8080) ports stay inside the cluster (a render test scans every stack for it).
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import labels, versions
from infra.component import register_declared_outputs
from infra.config.exposure import AlbConfig
from infra.context import StackContext
from infra.foundation.cluster import Cluster
from infra.helm import pinned_release
from infra.iam import pod_identity_role
from infra.serving.lb_controller_iam import controller_policy
from infra.serving.timeouts import connection_timeouts
from serve_app.config import ServingConfig

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
INGRESS_CLASS = "alb"
SERVE_PORT = 8000
# Ray ports that must never be a Service/Ingress/LoadBalancer port reachable from outside.
INTERNAL_RAY_PORTS = {"dashboard": 8265, "gcs": 6379, "client": 10001, "metrics": 8080}
ALB = "alb.ingress.kubernetes.io"


def serve_service_name(rayservice_name: str) -> str:
    """The Service KubeRay keeps pointed at the serving cluster (kuberay v1.7.0,
    ray-operator/controllers/ray/common/service.go: `<RayService name>-serve-svc`)."""
    return f"{rayservice_name}-serve-svc"


def health_check_path(serving: ServingConfig) -> str:
    """Where the app answers 200 without a key: the gateway's `/health` under its route prefix
    (serve_app.middleware.HEALTH_PATH); with the direct gateway, vLLM's own `/health` of the first
    model's application."""
    prefix = serving.route_prefix.rstrip("/")
    if serving.gateway == "direct" and len(serving.models) > 1:
        prefix = f"{prefix}/{serving.models[0].id}"
    return f"{prefix}/health"


def inbound_cidrs(alb: AlbConfig, vpc_cidrs: list[IPv4Network]) -> list[str]:
    """Sources the ALB's security group admits. The controller's default is 0.0.0.0/0 for any
    scheme; an internal ALB without a list gets the VPC's ranges instead."""
    if alb.allowed_cidrs:
        return [str(c) for c in alb.allowed_cidrs]
    if alb.scheme == "internal":
        return [str(c) for c in vpc_cidrs]
    return ["0.0.0.0/0"]  # internet-facing on a public-endpoint stack, by config (see config)


def ingress(
    alb: AlbConfig,
    serving: ServingConfig,
    *,
    name: str,
    namespace: str,
    service: str,
    vpc_cidrs: list[IPv4Network],
    tags: dict[str, str],
) -> dict[str, Any]:
    """The Ingress that makes the controller build the ALB (annotation reference: the
    controller's docs/guide/ingress/annotations.md at v3.5.0)."""
    timeouts = connection_timeouts(alb.idle_timeout_s)
    attributes = {
        "idle_timeout.timeout_seconds": str(alb.idle_timeout_s),
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": str(alb.deletion_protection).lower(),
    }
    annotations = {
        f"{ALB}/scheme": alb.scheme,
        f"{ALB}/target-type": "ip",
        f"{ALB}/listen-ports": json.dumps([{"HTTPS": 443}]),
        f"{ALB}/certificate-arn": alb.certificate_arn or "",
        f"{ALB}/ssl-policy": alb.ssl_policy,
        f"{ALB}/inbound-cidrs": ",".join(inbound_cidrs(alb, vpc_cidrs)),
        f"{ALB}/backend-protocol": "HTTP",
        f"{ALB}/healthcheck-path": health_check_path(serving),
        f"{ALB}/healthcheck-port": "traffic-port",
        f"{ALB}/success-codes": "200",
        f"{ALB}/load-balancer-attributes": ",".join(f"{k}={v}" for k, v in attributes.items()),
        # A pod leaving the target group finishes its streams before it is cut off.
        f"{ALB}/target-group-attributes":
            f"deregistration_delay.timeout_seconds={timeouts.deregistration_delay_s}",
        f"{ALB}/tags": ",".join(f"{k}={v}" for k, v in sorted(tags.items())),
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "defaultBackend": {"service": {"name": service, "port": {"number": SERVE_PORT}}},
        },
    }


def controller_values(
    cluster_name: str, region: str, vpc_id: str, tags: dict[str, str]
) -> dict[str, Any]:
    """Helm values of the controller chart (keys checked against the chart's values.yaml)."""
    sched = labels.system_scheduling()
    image = versions.AWS_LB_CONTROLLER_IMAGE
    return {
        "clusterName": cluster_name,
        # Given, not looked up: the controller would otherwise ask IMDS, which pods cannot reach
        # on nodes with a hop limit of 1.
        "region": region,
        "vpcId": vpc_id,
        "replicaCount": 2,
        "image": {"repository": image.repository, "tag": image.tag},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "nodeSelector": sched["nodeSelector"],
        "tolerations": sched["tolerations"],
        "podDisruptionBudget": {"maxUnavailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                      "limits": {"memory": "256Mi"}},
        "ingressClass": INGRESS_CLASS,
        "createIngressClassResource": True,
        "ingressClassConfig": {"default": False},
        # Not the default for every new Service of type LoadBalancer: that webhook (failure
        # policy Fail) would sit in the path of every Service creation, KubeRay's included.
        "enableServiceMutatorWebhook": False,
        "defaultTags": dict(tags),
    }


class Exposure(pulumi.ComponentResource):
    """The ALB path to Ray Serve; nothing when `alb.enabled` is false."""

    controller: k8s.helm.v3.Release | None  # the Load Balancer Controller release
    ingress_name: str | None

    def __init__(
        self,
        name: str,
        *,
        alb: AlbConfig,
        serving: ServingConfig,
        cluster: Cluster,
        namespace: str,
        service: str,
        vpc_id: pulumi.Input[str],
        vpc_cidrs: list[IPv4Network],
        ctx: StackContext,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:k8s:Exposure", name, None, opts)
        self.controller = None
        self.ingress_name = None
        if alb.enabled:
            self._alb(name, alb, serving, cluster, namespace, service, vpc_id, vpc_cidrs, ctx,
                      depends_on or [])
        register_declared_outputs(self)

    def _alb(
        self, name: str, alb: AlbConfig, serving: ServingConfig, cluster: Cluster,
        namespace: str, service: str, vpc_id: pulumi.Input[str], vpc_cidrs: list[IPv4Network],
        ctx: StackContext, depends_on: list[pulumi.Resource],
    ) -> None:
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        iam = pod_identity_role(
            f"{name}-lb-controller",
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy_json=partition.apply(lambda p: json.dumps(controller_policy(p))),
            cluster_name=cluster.name,
            tags=ctx.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.controller = pinned_release(
            f"{name}-lb-controller",
            release_name="aws-load-balancer-controller",
            chart=versions.AWS_LB_CONTROLLER_CHART,
            namespace=NAMESPACE,
            values=pulumi.Output.all(region, vpc_id).apply(
                lambda a: controller_values(ctx.cluster_name, a[0], a[1], ctx.tags)
            ),
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[cluster.node_group, *iam.policies,
                                *([iam.association] if iam.association else [])]
                ),
            ),
        )
        obj = ingress(alb, serving, name=f"{name}-serve", namespace=namespace, service=service,
                      vpc_cidrs=vpc_cidrs, tags=ctx.tags)
        # Deleted before the controller on teardown, so that the controller removes the ALB.
        k8s.networking.v1.Ingress(
            f"{name}-serve",
            metadata=obj["metadata"],
            spec=obj["spec"],
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=[self.controller, *depends_on])
            ),
        )
        self.ingress_name = obj["metadata"]["name"]
