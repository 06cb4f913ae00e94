"""What each process in each rendered pod template needs at run time, from upstream source, and
whether the render grants it. Schemas cannot see these: a pod that validates can still die on
start because a file, a variable, a port or a connection is missing.

Per template, `Needs` says which process needs what and where upstream says so:
- `token`: the ServiceAccount token file /var/run/secrets/kubernetes.io/serviceaccount/token
  (mounted when the pod's, else the ServiceAccount's, `automountServiceAccountToken` is not
  false);
- `env`: variables that must be set on the container;
- `listens`: container ports by name (what KubeRay and Services address);
- `flows`: connections by their name in the flow matrix (tests/render/test_flow_matrix.py),
  which must be there and pass.
Every `secretKeyRef` and secret volume must name a Secret the render creates in the namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.config.model_store import is_gated_hf_source
from infra.serving.gcs_store import CA_BUNDLE
from infra.serving.rayservice import INGRESS_GROUP
from infra.serving.vector_db import DSN_ENV_VAR, IAM_REGION_ENV_VAR
from serve_app.tenants.settings import TenantsConfig
from tests.render.test_flow_matrix import flow_matrix
from tests.support.vpc_cni_policy import verdict
from tools.render import STACKS, Rendered

Render = Callable[[str], Rendered]
RAYSERVICE = "kubernetes:ray.io/v1:RayService"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


@dataclass(frozen=True)
class Needs:
    process: str
    source: str  # the upstream file that says so
    token: bool = False
    env: tuple[str, ...] = ()
    listens: tuple[tuple[str, int], ...] = ()
    flows: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    name: str
    namespace: str
    spec: dict[str, Any]
    needs: tuple[Needs, ...]


AUTOSCALER = Needs(
    "Ray autoscaler sidecar (added by KubeRay to the head, under the head's ServiceAccount)",
    "kuberay v1.7.0 ray-operator/controllers/ray/common/pod.go (autoscaler container, no token "
    "volume of its own); ray python/ray/autoscaler/_private/kuberay/node_provider.py (reads the "
    "token at start)",
    token=True, flows=("autoscaler (head) to the API server", "ray-headgroup DNS over UDP"),
)
POD_IDENTITY_SDK = Needs(
    "AWS SDKs in the Ray processes (S3 model store, runtime_env working_dir)",
    "EKS Pod Identity: the webhook injects its own projected token; whether it does so with "
    "automount off is unconfirmed (PeerDB-io/peerdb-enterprise#43), so automount stays on; "
    "boto3 needs AWS_REGION",
    token=True, env=("AWS_REGION",),
)


# The import Jobs keep automount off (checkov CKV_K8S_38; their account has no API use), so
# they do not need the token here: whether Pod Identity works for them that way is the manual
# check "Pod Identity reaches the pods" in docs/aws.md (First deploy), proven by the first import.
IMPORT_SDK = Needs(
    "boto3 uploading the snapshot to S3 through Pod Identity",
    "infra/serving/model_import.py IMPORT_SCRIPT; boto3 needs AWS_REGION",
    env=("AWS_REGION",),
)


def ray_templates(r: Rendered) -> list[Template]:
    (rs,) = [x.inputs for x in r.of_type(RAYSERVICE)]
    ns = rs["metadata"]["namespace"]
    cluster = rs["spec"]["rayClusterConfig"]
    ft = cluster.get("gcsFaultToleranceOptions")
    tls = bool(ft) and str(ft["redisAddress"]).startswith("rediss://")
    head_ray = Needs(
        "Ray head: GCS, dashboard, Ray client server, Serve controller and proxy",
        "kuberay v1.7.0 common/service.go (head Service ports by name, a `serve` port for the "
        "serve Service); ray src/ray/gcs/store_client/redis_context.cc (TLS CA from "
        "RAY_REDIS_CA_CERT)",
        env=("RAY_REDIS_CA_CERT",) if tls else (),
        listens=(("gcs-server", 6379), ("dashboard", 8265), ("client", 10001), ("serve", 8000)),
        flows=(("head GCS to its Redis",) if ft else ()) + (
            "KubeRay operator to head dashboard", "Prometheus scrapes ray-headgroup"),
    )
    out = [Template("head", ns, cluster["headGroupSpec"]["template"]["spec"],
                    (AUTOSCALER, head_ray, POD_IDENTITY_SDK))]
    for g in cluster["workerGroupSpecs"]:
        name = g["groupName"]
        worker = Needs(
            "Ray worker: raylet, Serve proxy, replicas",
            "kuberay v1.7.0 common/pod.go (workers join the head's GCS at <head-svc>:6379; "
            "readiness probes the local proxy)",
            flows=(f"ray-{name} to head GCS", f"ray-{name} to S3",
                   f"ray-{name} to the Pod Identity agent", f"Prometheus scrapes ray-{name}"),
        )
        needs = [worker, POD_IDENTITY_SDK]
        if name == INGRESS_GROUP:
            needs += gateway_needs(r, name, gcs_redis=bool(ft))
        out.append(Template(name, ns, g["template"]["spec"], tuple(needs)))
    return out


def gateway_needs(r: Rendered, group: str, *, gcs_redis: bool) -> list[Needs]:
    """The ingress replicas' own clients: the tenant limiter (with a GCS Redis) and RAG (with
    an Aurora database, i.e. a migration Job in the render)."""
    out = []
    if gcs_redis:
        tenants = TenantsConfig()
        out.append(Needs(
            "tenant limiter and budget reporter (redis-py, pip-installed by the runtime_env)",
            "serve_app/tenants/gate.py (URL and password from env); redis-py 8.2.0 "
            "redis/asyncio/connection.py parse_url (rediss:// -> SSLConnection)",
            env=(tenants.redis_url_env_var, tenants.redis_password_env_var),
            flows=(f"ray-{group} to the GCS Redis (tenant limits)",
                   f"ray-{group} DNS over UDP", f"ray-{group} DNS over TCP",
                   f"ray-{group} to PyPI (runtime_env pip)"),
        ))
    if any(o["kind"] == "Job" and o["metadata"]["name"].startswith("rag-migrate-")
           for o in r.kubernetes_objects()):
        out.append(Needs(
            "RAG store: psycopg pool logging in as rag_app with an IAM token per connection",
            "serve_app/rag/aws_secret.py (botocore ContainerProvider via the Pod Identity "
            "agent; generate_db_auth_token for the region)",
            env=(DSN_ENV_VAR, IAM_REGION_ENV_VAR),
            flows=(f"ray-{group} to Aurora", f"ray-{group} to the Pod Identity agent",
                   f"ray-{group} to PyPI (runtime_env pip)"),
        ))
    return out


def redis_templates(r: Rendered) -> list[Template]:
    out = []
    for o in r.kubernetes_objects():
        if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "gcs-redis":
            out.append(Template("gcs-redis", o["metadata"]["namespace"],
                                o["spec"]["template"]["spec"], (Needs(
                                    "redis-server with --requirepass $(REDIS_PASSWORD)",
                                    "infra/serving/gcs_store.py args; Service targetPort `redis`",
                                    env=("REDIS_PASSWORD",), listens=(("redis", 6379),),
                                ),)))
    return out


def import_templates(r: Rendered) -> list[Template]:
    """The optional model-import Jobs (infra/serving/model_import.py): they write to S3 through
    Pod Identity and download gated repositories with HF_TOKEN."""
    out = []
    for o in r.kubernetes_objects():
        if o["kind"] == "Job" and o["metadata"].get("labels", {}).get(
                "app.kubernetes.io/name") == "model-import":
            repo = o["metadata"]["annotations"]["llm-platform.io/hf-repo"]
            hub = Needs("huggingface_hub snapshot download of a gated repository",
                        "the repository's model card (gated: a token of an account that "
                        "accepted its licence)", env=("HF_TOKEN",))
            out.append(Template(o["metadata"]["name"], o["metadata"]["namespace"],
                                o["spec"]["template"]["spec"],
                                (IMPORT_SDK, *([hub] if is_gated_hf_source(repo) else []))))
    return out


def token_mounted(spec: dict[str, Any], accounts: dict[str, dict[str, Any]]) -> bool:
    """Kubernetes: the pod's field wins, then the ServiceAccount's, else mounted."""
    if "automountServiceAccountToken" in spec:
        return bool(spec["automountServiceAccountToken"])
    sa = accounts.get(spec.get("serviceAccountName", "default"), {})
    return sa.get("automountServiceAccountToken", True) is not False


def template_problems(r: Rendered, t: Template) -> list[str]:
    objs = r.kubernetes_objects()
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"
                and o["metadata"].get("namespace") == t.namespace}
    secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"
               and o["metadata"].get("namespace") == t.namespace}
    cluster, flows = flow_matrix(r)
    by_name = {f.name: f for f in flows}
    (container,) = t.spec["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    out = []
    for n in t.needs:
        where = f"{t.name}: {n.process} ({n.source})"
        if n.token and not token_mounted(t.spec, accounts):
            out.append(f"{where}: needs the ServiceAccount token, automount is off")
        out += [f"{where}: needs env {v}" for v in n.env if v not in env]
        out += [f"{where}: needs port {name}={port}" for name, port in n.listens
                if ports.get(name) != port]
        for name in n.flows:
            if name not in by_name:
                out.append(f"{where}: the flow matrix lacks {name!r}")
            elif not verdict(cluster, by_name[name])[0]:
                out.append(f"{where}: connection refused: {name}")
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if not ref:
            continue
        data = secrets.get(ref["name"], {}).get("stringData")
        # A whole stringData that is one secret Output renders masked: its keys are unknown.
        if ref["name"] not in secrets or (isinstance(data, dict) and ref["key"] not in data):
            out.append(f"{t.name}: env {e['name']} names a missing Secret key {ref}")
    for v in t.spec.get("volumes", []):
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            out.append(f"{t.name}: volume {v['name']} names a missing Secret")
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_template_gets_what_its_processes_need(stack: str, rendered: Render) -> None:
    r = rendered(stack)
    templates = ray_templates(r) + redis_templates(r)
    assert [p for t in templates for p in template_problems(r, t)] == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_ray_pods_service_account_has_a_pod_identity_association(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    (head, *_) = ray_templates(r)
    pairs = {(a.inputs["namespace"], a.inputs["serviceAccount"]) for a in r.of_type(POD_IDENTITY)}
    assert (head.namespace, head.spec["serviceAccountName"]) in pairs


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_gcs_over_tls_verifies_against_the_image_ca_bundle(stack: str, rendered: Render) -> None:
    (head, *_) = ray_templates(rendered(stack))
    env = {e["name"]: e.get("value") for e in head.spec["containers"][0]["env"]}
    assert env["RAY_REDIS_CA_CERT"] == CA_BUNDLE == "/etc/ssl/certs/ca-certificates.crt"

