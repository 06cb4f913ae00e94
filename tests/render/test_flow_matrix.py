"""The flow matrix: every connection the platform needs and every one that must be refused,
judged against each stack's rendered NetworkPolicies with the VPC CNI agent's semantics
(tests/support/vpc_cni_policy.py: egress to a Service's ClusterIP needs a selector peer matching
the Service's selector; node IPs always pass).

The pods are the rendered ones where the render has them (Ray pod templates, the dev Redis and
its Service) plus the labels the operators add, from upstream:
- KubeRay v1.7.0 labels every Ray pod `ray.io/is-ray-node: yes`, `ray.io/node-type`,
  `ray.io/group`, `ray.io/cluster` (ray-operator/controllers/ray/common/pod.go, labelPod);
- the head Service is headless unless ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE is set (common/
  service.go), so workers and the operator reach the head by pod IP;
- the kuberay-operator chart labels its pod `app.kubernetes.io/name: kuberay-operator`;
- CoreDNS pods and the kube-dns Service select `k8s-app: kube-dns` (EKS add-on);
- `default/kubernetes` has no selector; its endpoints are the control plane's ENIs in the VPC.
Addresses outside the cluster are fixed test addresses in the right ranges (VPC, EKS's default
Service range 172.20.0.0/16, the internet).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

import pytest

from infra.config import own_keys, validate
from infra.platform import kuberay, monitoring
from infra.serving.network_policy import NS_LABEL, POD_IDENTITY_AGENT
from infra.serving.rayservice import NAME, NAMESPACE
from infra.serving.vector_db import db_subnet_cidrs
from tests.support.vpc_cni_policy import (
    Cluster,
    Flow,
    Host,
    Pod,
    Service,
    host_in,
    ip,
    problems,
)
from tools.render import STACKS, Rendered, stack_config

Render = Callable[[str], Rendered]
RAYSERVICE = "kubernetes:ray.io/v1:RayService"
SERVICE_RANGE = IPv4Network("172.20.0.0/16")
OTHER_NS = "team-apps"  # any namespace of other workloads


def _objs(r: Rendered, kind: str) -> list[dict[str, Any]]:
    return [o for o in r.kubernetes_objects() if o["kind"] == kind]


def pod_ranges(r: Rendered) -> tuple[IPv4Network, IPv4Network]:
    """(the VPC's primary range, the range pods get their IPs from: podCidr if set)."""
    vpc = IPv4Network(r.of_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"])
    extra = r.of_type("aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation")
    return vpc, IPv4Network(extra[0].inputs["cidrBlock"]) if extra else vpc


def ray_pods(r: Rendered, pods_net: IPv4Network) -> tuple[Pod, list[Pod]]:
    """The head and one pod per worker group, labelled as KubeRay labels them."""
    (rs,) = [x.inputs for x in r.of_type(RAYSERVICE)]
    cluster = rs["spec"]["rayClusterConfig"]

    def pod(i: int, group: dict[str, Any], kind: str, name: str) -> Pod:
        labels = {**group["template"].get("metadata", {}).get("labels", {}),
                  "ray.io/is-ray-node": "yes", "ray.io/node-type": kind,
                  "ray.io/group": name, "ray.io/cluster": f"{NAME}-abcde"}
        return Pod(f"ray-{name}", NAMESPACE, labels, host_in(pods_net, 100 + i))

    head = pod(0, cluster["headGroupSpec"], "head", "headgroup")
    workers = [pod(i + 1, g, "worker", g["groupName"])
               for i, g in enumerate(cluster["workerGroupSpecs"])]
    return head, workers


def redis_target(r: Rendered) -> tuple[Service | Host | None, list[Pod]]:
    """The GCS Redis as the head reaches it: the in-cluster Service (dev, with its pod), the
    ElastiCache endpoint in the VPC, or None without GCS fault tolerance."""
    (rs,) = [x.inputs for x in r.of_type(RAYSERVICE)]
    ft = rs["spec"]["rayClusterConfig"].get("gcsFaultToleranceOptions")
    if ft is None:
        return None, []
    sts = [o for o in _objs(r, "StatefulSet") if o["metadata"]["name"] == "gcs-redis"]
    if not sts:
        vpc, _ = pod_ranges(r)
        return Host("ElastiCache primary endpoint (VPC ENI)", host_in(vpc, 40)), []
    (svc,) = [o for o in _objs(r, "Service") if o["metadata"]["name"] == "gcs-redis"]
    _, pods_net = pod_ranges(r)
    tpl = sts[0]["spec"]["template"]
    pod = Pod("gcs-redis-0", sts[0]["metadata"]["namespace"], tpl["metadata"]["labels"],
              host_in(pods_net, 90))
    ports = {p["port"]: next(c["containerPort"] for c in tpl["spec"]["containers"][0]["ports"]
                             if c["name"] == p["targetPort"]) for p in svc["spec"]["ports"]}
    service = Service("gcs-redis", svc["metadata"]["namespace"], svc["spec"]["selector"],
                      host_in(SERVICE_RANGE, 200), ports)
    return service, [pod]


def rag_targets(r: Rendered, pods_net: IPv4Network) -> tuple[Host, Pod] | None:
    """With RAG on: the Aurora writer (an ENI in the DB subnets, as the stack config plans them)
    and the migration Job's pod (its rendered labels); None when the stack has no database."""
    jobs = [o for o in _objs(r, "Job") if o["metadata"]["name"].startswith("rag-migrate-")]
    if not jobs:
        return None
    values, secrets = stack_config(r.stack)
    db_cidrs = db_subnet_cidrs(validate(*own_keys(values, set(secrets))).network)
    aurora = Host("Aurora writer (ENI in a DB subnet)", host_in(db_cidrs[-1], 40))
    (job,) = jobs
    pod = Pod("rag-migrate", job["metadata"]["namespace"],
              job["spec"]["template"]["metadata"]["labels"], host_in(pods_net, 91))
    return aurora, pod


def flow_matrix(r: Rendered) -> tuple[Cluster, list[Flow]]:
    vpc, pods_net = pod_ranges(r)
    head, workers = ray_pods(r, pods_net)
    redis, redis_pods = redis_target(r)
    operator = Pod("kuberay-operator", kuberay.NAMESPACE,
                   {"app.kubernetes.io/name": "kuberay-operator"}, host_in(pods_net, 10))
    prometheus = Pod("prometheus", monitoring.NAMESPACE, {"app.kubernetes.io/name": "prometheus"},
                     host_in(pods_net, 11))
    coredns = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, host_in(pods_net, 12))
    intruder = Pod("other-app", OTHER_NS, {"app": "other"}, host_in(pods_net, 13))
    dns = Service("kube-dns", "kube-system", {"k8s-app": "kube-dns"},
                  host_in(SERVICE_RANGE, 10), {53: 53})
    api_server = Service("kubernetes", "default", None, host_in(SERVICE_RANGE, 1), {443: 443},
                         endpoints=(Host("EKS control plane ENI", host_in(vpc, 60)),))
    head_svc = Service(f"{NAME}-head-svc", NAMESPACE,
                       {"ray.io/node-type": "head", "ray.io/cluster": f"{NAME}-abcde"}, None,
                       {6379: 6379, 8265: 8265, 10001: 10001, 8000: 8000, 8080: 8080})
    node = Host("kubelet on the pod's node", host_in(vpc, 5), is_node=True)
    alb = Host("ALB node (target type ip)", host_in(vpc, 20))
    vpc_host = Host("another instance in the VPC", host_in(vpc, 30))
    internet = Host("a host on the internet", ip("203.0.113.9"))
    s3 = Host("S3 (public endpoint)", ip("52.92.16.10"))
    sts_endpoint = Host("STS interface endpoint", host_in(vpc, 50))
    pod_identity = Host("EKS Pod Identity agent", IPv4Network(POD_IDENTITY_AGENT)[0])
    hf_hub = Host("Hugging Face Hub", ip("18.160.10.20"))
    # runtime_env pip (RAG packages, the Redis client) fetches from pypi.org and
    # files.pythonhosted.org over HTTPS; addresses of PyPI's CDN (Fastly, 151.101.0.0/16).
    pypi = Host("PyPI (files.pythonhosted.org)", ip("151.101.64.223"))
    worker = workers[0]
    rag = rag_targets(r, pods_net)

    namespaces = {n: {NS_LABEL: n} for n in (
        NAMESPACE, kuberay.NAMESPACE, monitoring.NAMESPACE, "kube-system", "default", OTHER_NS)}
    cluster = Cluster(
        namespaces=namespaces,
        pods=[head, *workers, *redis_pods, operator, prometheus, coredns, intruder,
              *([rag[1]] if rag else [])],
        policies=_objs(r, "NetworkPolicy"),
    )
    ray = [head, *workers]
    flows: list[Flow] = [
        Flow("worker to head GCS (headless head Service)", worker, head_svc, 6379, True),
        *[Flow(f"{w.name} to head GCS", w, head, 6379, True) for w in workers],
        Flow("head to worker raylet/object manager (dynamic port)", head, worker, 10005, True),
        Flow("worker to worker (object transfer, dynamic port)", worker, workers[-1], 10005,
             True),
        Flow("KubeRay operator to head dashboard", operator, head_svc, 8265, True),
        *[Flow(f"Prometheus scrapes {p.name}", prometheus, p, 8080, True) for p in ray],
        Flow("ALB to a Serve proxy", alb, worker, 8000, True),
        Flow("kubelet probes a worker", node, worker, 8000, True),
        Flow("autoscaler (head) to the API server", head, api_server, 443, True),
        *[Flow(f"{p.name} DNS over UDP", p, dns, 53, True, "UDP") for p in ray],
        *[Flow(f"{p.name} DNS over TCP", p, dns, 53, True) for p in ray],
        *[Flow(f"{p.name} to S3", p, s3, 443, True) for p in ray],
        *[Flow(f"{p.name} to STS", p, sts_endpoint, 443, True) for p in ray],
        *[Flow(f"{p.name} to the Pod Identity agent", p, pod_identity, 80, True) for p in ray],
        Flow("worker to the Hugging Face Hub", worker, hf_hub, 443, True),
        *[Flow(f"{p.name} to PyPI (runtime_env pip)", p, pypi, 443, True) for p in ray],
        # Refused: nothing outside the cluster reaches the Ray control ports.
        *[Flow(f"internet to head {port}", internet, head, port, False)
          for port in (6379, 8265, 10001, 8080, 52365)],
        Flow("internet to worker metrics", internet, worker, 8080, False),
        *[Flow(f"VPC host to head {port}", vpc_host, head, port, False)
          for port in (6379, 8265, 10001, 8080)],
        Flow("other namespace to head GCS", intruder, head, 6379, False),
        Flow("other namespace to head dashboard", intruder, head, 8265, False),
        Flow("Prometheus to head dashboard", prometheus, head, 8265, False),
        Flow("operator to head GCS", operator, head, 6379, False),
        Flow("head to a Redis port on the internet", head, internet, 6379, False),
    ]
    if redis is not None:
        flows.append(Flow("head GCS to its Redis", head, redis, 6379, True))
        # The tenant limiter and its budget reporter use the same Redis from the ingress
        # replicas, i.e. from worker pods (serve_app/tenants/gate.py, usage.py).
        flows += [Flow(f"{w.name} to the GCS Redis (tenant limits)", w, redis, 6379, True)
                  for w in workers]
    if isinstance(redis, Service):
        flows += [
            Flow("other namespace to the GCS Redis Service", intruder, redis, 6379, False),
            Flow("other namespace to the GCS Redis pod", intruder, redis_pods[0], 6379, False),
            Flow("VPC host to the GCS Redis pod", vpc_host, redis_pods[0], 6379, False),
        ]
    if rag is not None:
        aurora, job = rag
        flows += [
            *[Flow(f"{p.name} to Aurora", p, aurora, 5432, True) for p in ray],
            Flow("migration Job to Aurora", job, aurora, 5432, True),
            Flow("migration Job DNS", job, dns, 53, True, "UDP"),
            Flow("migration Job to S3 (code bundle)", job, s3, 443, True),
            Flow("migration Job to Secrets Manager/STS", job, sts_endpoint, 443, True),
            Flow("migration Job to the Pod Identity agent", job, pod_identity, 80, True),
            Flow("migration Job to PyPI (psycopg if the image lacks it)", job, pypi, 443, True),
            # Refused: PostgreSQL anywhere but the DB subnets, and the Job into Ray.
            *[Flow(f"{p.name} to PostgreSQL on the internet", p, internet, 5432, False)
              for p in ray],
            Flow("migration Job to PostgreSQL on the internet", job, internet, 5432, False),
            Flow("migration Job to head GCS", job, head, 6379, False),
            Flow("migration Job to head dashboard", job, head, 8265, False),
            Flow("other namespace to the migration Job", intruder, job, 8080, False),
        ]
    return cluster, flows


@pytest.mark.parametrize("stack", STACKS)
def test_every_needed_connection_passes_and_every_forbidden_one_is_refused(
    stack: str, rendered: Render
) -> None:
    cluster, flows = flow_matrix(rendered(stack))
    assert problems(cluster, flows) == []


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_rag_stacks_cover_aurora_pypi_and_the_migration_job(
    stack: str, rendered: Render
) -> None:
    """RAG's packages reach the Ray pods by runtime_env pip, so PyPI over 443 must pass; the
    database only by the DB subnets' ipBlock; the Job's pod only what its own policy allows."""
    _, flows = flow_matrix(rendered(stack))
    names = {f.name for f in flows}
    assert {"migration Job to Aurora", "migration Job to head GCS",
            "ray-headgroup to PyPI (runtime_env pip)"} <= names
    assert sum(f.name.endswith(" to Aurora") for f in flows) >= 3


def test_the_dev_matrix_covers_the_in_cluster_redis(rendered: Render) -> None:
    _, flows = flow_matrix(rendered("dev"))
    (redis,) = [f for f in flows if f.name == "head GCS to its Redis"]
    assert isinstance(redis.target, Service) and redis.target.cluster_ip is not None
