"""Post-deploy check of a live stack: does the platform actually serve?

    make verify STACK=dev                       # VERIFY_API_KEY=<a key of the stack> in the env
    python -m tools.verify --stack prod --alb-url https://llm.example.com
    python -m tools.verify --stack dev --disruptive          # also restarts the Ray head

Each check prints PASS, FAIL (with what to do) or SKIP (with what it needs); the exit code is 1
when any check fails. Checks, in groups (`--checks` picks groups; default all):
- cluster: the RayService is Ready; the head's autoscaler sidecar runs (it dies without the
  ServiceAccount token, tests/render/test_pod_needs.py); every worker group can scale (positive
  maxReplicas, its Karpenter NodePool Ready, no pod of it Pending for long);
- serving: a chat completion answers through KubeRay's serve Service (a kubectl port-forward,
  or `--serve-url`) with the key, and a wrong key gets 401;
- alb: the same through the ALB (`--alb-url`, the DNS name its certificate is for);
- prometheus: every scrape target of the cluster's Prometheus is up (port-forward to
  `prometheus-operated`, or `--prometheus`);
- dashboards: every dashboard panel returns data (tools.dashboards_check);
- with `--disruptive` only: the head pod is deleted and the platform must come back without
  the workers restarting (GCS fault tolerance, docs/head-failure.md). Never by default; on
  prod only with `--confirm-prod-head-restart`.

kubectl must reach the cluster (`pulumi stack output kubeconfig --show-secrets > kubeconfig`,
`KUBECONFIG=kubeconfig`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from dashboards.build import all_specs
from dashboards.spec import DashboardSpec
from infra import labels
from infra.platform.monitoring import NAMESPACE as MONITORING_NAMESPACE
from infra.serving.exposure import serve_service_name
from infra.serving.rayservice import NAME, NAMESPACE, SERVE_PORT
from tools import dashboards_check
from tools.process import free_port

GROUPS = ("cluster", "serving", "alb", "prometheus", "dashboards")
PROMETHEUS_SERVICE = "prometheus-operated"  # made by the Prometheus operator for every Prometheus
PENDING_LIMIT_S = 900  # a worker pod Pending longer than this: its pool cannot launch a node
WRONG_KEY = "sk-verify-wrong-key-0000000000"


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str
    fix: str = ""


def passed(name: str, detail: str) -> Result:
    return Result(name, "PASS", detail)


def failed(name: str, detail: str, fix: str) -> Result:
    return Result(name, "FAIL", detail, fix)


def skipped(name: str, needs: str) -> Result:
    return Result(name, "SKIP", needs)


# ----------------------------------------------------------------------------------- serving
def chat(base_url: str, key: str, model: str, timeout: float) -> httpx.Response:
    return httpx.post(
        f"{base_url.rstrip('/')}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "Say OK."}],
              "max_tokens": 8},
        timeout=timeout,
    )


def first_model(base_url: str, key: str) -> str | None:
    r = httpx.get(f"{base_url.rstrip('/')}/v1/models",
                  headers={"Authorization": f"Bearer {key}"}, timeout=30)
    data = r.json().get("data", []) if r.status_code == 200 else []
    return data[0]["id"] if data else None


def check_serving(via: str, base_url: str, key: str | None, model: str | None,
                  timeout: float) -> list[Result]:
    """A chat completion with the key, and a 401 with a wrong one, through `via`."""
    name = f"chat completion through the {via}"
    if not key:
        return [skipped(name, "an API key of the stack: --key or VERIFY_API_KEY")]
    try:
        model = model or first_model(base_url, key)
        if model is None:
            return [failed(name, f"GET {base_url}/v1/models listed no model",
                           "check the key (a 401 here means it is not one of the stack's "
                           "apiKeys) and `kubectl -n serving get rayservice`")]
        r = chat(base_url, key, model, timeout)
        if r.status_code == 200 and r.json()["choices"][0]["message"]["content"] is not None:
            ok = passed(name, f"{model}: 200 in {r.elapsed.total_seconds():.1f} s")
        else:
            ok = failed(name, f"{model}: HTTP {r.status_code} {r.text[:200]}",
                        "503/504: replicas still starting (GPU node, image pull, weights), "
                        "retry in a few minutes and watch `kubectl -n serving get pods`; 502: "
                        "see docs/aws.md (first deploy); 401: the key is not in apiKeys")
        wrong = chat(base_url, WRONG_KEY, model, 60)
        if wrong.status_code == 401:
            bad = passed(f"wrong key refused through the {via}", "401")
        else:
            bad = failed(f"wrong key refused through the {via}", f"HTTP {wrong.status_code}",
                         "the app must refuse unknown keys: check serving.auth in the stack "
                         "and the mounted api-keys Secret")
        return [ok, bad]
    except httpx.HTTPError as exc:
        return [failed(name, f"{type(exc).__name__}: {exc}",
                       "is the URL reachable from here (port-forward, VPN, ALB security "
                       "group allowedCidrs)?")]


# -------------------------------------------------------------------------------- prometheus
def check_targets(prometheus: str) -> Result:
    name = "Prometheus targets up"
    try:
        body = httpx.get(f"{prometheus}/api/v1/targets", params={"state": "active"},
                         timeout=30).json()
    except httpx.HTTPError as exc:
        return failed(name, str(exc), "is Prometheus reachable (port-forward)?")
    targets = body.get("data", {}).get("activeTargets", [])
    down = [f"{t['labels'].get('job')} {t.get('scrapeUrl')}: {t.get('lastError')}"
            for t in targets if t.get("health") != "up"]
    if not targets:
        return failed(name, "no active targets", "check the PodMonitors/ServiceMonitors "
                      "(`kubectl get podmonitors,servicemonitors -A`) and the Prometheus "
                      "selectors (docs/monitoring.md)")
    if down:
        return failed(name, f"{len(down)}/{len(targets)} down: " + "; ".join(down[:5]),
                      "a Ray target down: its pod's metrics port 8080 and the "
                      "ray-metrics-from-prometheus NetworkPolicy; others: that component's pods")
    return passed(name, f"{len(targets)} targets up")


def check_dashboards(prometheus: str, specs: dict[str, DashboardSpec],
                     values: dict[str, str]) -> list[Result]:
    results = dashboards_check.check(prometheus, specs, values)
    panels: dict[tuple[str, str], list[dashboards_check.QueryResult]] = {}
    for r in results:
        panels.setdefault((r.dashboard, r.panel), []).append(r)
    empty = [f"{d}: {p}" for (d, p), rs in panels.items() if not all(r.has_data for r in rs)]
    name = "dashboard panels return data"
    if empty:
        return [failed(name, f"{len(empty)}/{len(panels)} without data: " + "; ".join(empty),
                       "send some traffic first (GPU and latency panels stay empty until a "
                       "model has served); then `python -m tools.dashboards_check "
                       "--prometheus URL` lists each query; docs/dashboards.md")]
    return [passed(name, f"{len(panels)} panels")]


# ----------------------------------------------------------------------------------- cluster
class Kube:
    """kubectl, as the person running the check has it configured."""

    def __init__(self, kubectl: str = "kubectl") -> None:
        self.kubectl = kubectl

    def run(self, *args: str) -> str:
        out = subprocess.run([self.kubectl, *args], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json"))

    @contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[str]:
        local = free_port()
        proc = subprocess.Popen(
            [self.kubectl, "port-forward", "-n", namespace, target, f"{local}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"port-forward {target}: {proc.stderr.read().strip()}")
                try:
                    socket.create_connection(("127.0.0.1", local), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{local}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def active_cluster(kube: Kube) -> str:
    rs = kube.get("rayservice", NAME, "-n", NAMESPACE)
    return rs.get("status", {}).get("activeServiceStatus", {}).get("rayClusterName", "")


def check_rayservice(kube: Kube) -> Result:
    name = "RayService Ready"
    rs = kube.get("rayservice", NAME, "-n", NAMESPACE)
    ready = _condition(rs, "Ready")
    if ready.get("status") == "True":
        return passed(name, f"active cluster {active_cluster(kube)}")
    return failed(name, f"Ready={ready.get('status')} reason={ready.get('reason')}: "
                        f"{ready.get('message', '')[:200]}",
                  f"`kubectl -n {NAMESPACE} describe rayservice {NAME}`; reason "
                  "InitializingTimeout is terminal: recreate the RayService (docs/rayservice.md)")


def head_pod(kube: Kube, cluster: str) -> dict[str, Any] | None:
    pods = kube.get("pods", "-n", NAMESPACE, "-l",
                    f"ray.io/node-type=head,ray.io/cluster={cluster}")["items"]
    return pods[0] if pods else None


def check_autoscaler(kube: Kube) -> Result:
    name = "autoscaler sidecar running"
    cluster = active_cluster(kube)
    pod = head_pod(kube, cluster)
    if pod is None:
        return failed(name, f"no head pod of {cluster!r}", f"`kubectl -n {NAMESPACE} get pods`")
    statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses", [])}
    auto = statuses.get("autoscaler")
    if auto and "running" in auto.get("state", {}):
        return passed(name, f"{pod['metadata']['name']}, restarts {auto.get('restartCount', 0)}")
    return failed(name, f"{pod['metadata']['name']}: autoscaler state "
                        f"{auto.get('state') if auto else 'missing'}",
                  f"`kubectl -n {NAMESPACE} logs {pod['metadata']['name']} -c autoscaler`: a "
                  "missing /var/run/secrets/kubernetes.io/serviceaccount/token means the "
                  "ServiceAccount's token is not mounted; the head (restartPolicy Never) must "
                  "then be deleted to get a new sidecar")


def check_worker_groups(kube: Kube) -> list[Result]:
    cluster = active_cluster(kube)
    rc = kube.get("raycluster", cluster, "-n", NAMESPACE)
    pools = {p["metadata"]["name"]: p for p in kube.get("nodepools")["items"]}
    pods = kube.get("pods", "-n", NAMESPACE, "-l",
                    f"ray.io/node-type=worker,ray.io/cluster={cluster}")["items"]
    out = []
    now = time.time()
    for g in rc["spec"].get("workerGroupSpecs", []):
        name = f"worker group {g['groupName']} can scale"
        selector = g["template"]["spec"].get("nodeSelector", {})
        pool = selector.get(labels.GPU_POOL_LABEL) or selector.get(labels.NODE_CLASS_LABEL)
        stuck = [p["metadata"]["name"] for p in pods
                 if p["metadata"]["labels"].get("ray.io/group") == g["groupName"]
                 and p["status"].get("phase") == "Pending"
                 and now - _timestamp(p["metadata"]["creationTimestamp"]) > PENDING_LIMIT_S]
        if g.get("maxReplicas", 0) < 1:
            out.append(failed(name, "maxReplicas is 0", "check the pool's GPU limit"))
        elif pool not in pools or _condition(pools[pool], "Ready").get("status") != "True":
            out.append(failed(name, f"NodePool {pool!r} missing or not Ready",
                              f"`kubectl describe nodepool {pool}` and the Karpenter logs "
                              "(`kubectl -n kube-system logs deploy/karpenter`)"))
        elif stuck:
            out.append(failed(name, f"Pending > {PENDING_LIMIT_S} s: {', '.join(stuck)}",
                              f"`kubectl -n {NAMESPACE} describe pod {stuck[0]}` and "
                              f"`kubectl get nodeclaims`: capacity, quota or pool limits"))
        else:
            running = sum(1 for p in pods
                          if p["metadata"]["labels"].get("ray.io/group") == g["groupName"])
            out.append(passed(name, f"pool {pool} Ready, {running} pod(s), max "
                                    f"{g['maxReplicas']}"))
    return out


def _timestamp(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def check_head_restart(kube: Kube, probe: Callable[[], list[Result]]) -> Result:
    """Delete the head pod; the platform must serve again with the same worker pods."""
    name = "head restart survived (GCS fault tolerance)"
    cluster = active_cluster(kube)
    head = head_pod(kube, cluster)
    if head is None:
        return failed(name, "no head pod", f"`kubectl -n {NAMESPACE} get pods`")
    selector = f"ray.io/node-type=worker,ray.io/cluster={cluster}"
    workers = {p["metadata"]["uid"] for p in kube.get("pods", "-n", NAMESPACE, "-l",
                                                      selector)["items"]}
    kube.run("delete", "pod", "-n", NAMESPACE, head["metadata"]["name"], "--wait=true")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        time.sleep(15)
        new = head_pod(kube, cluster)
        if new and _condition(new, "Ready").get("status") == "True" \
                and check_rayservice(kube).status == "PASS":
            break
    else:
        return failed(name, "the head did not come back Ready within 900 s",
                      "docs/head-failure.md; `kubectl -n serving describe pod` of the head")
    after = {p["metadata"]["uid"] for p in kube.get("pods", "-n", NAMESPACE, "-l",
                                                    selector)["items"]}
    served = probe()
    if any(r.status == "FAIL" for r in served):
        return failed(name, "the head came back but serving fails: " + served[0].detail,
                      "docs/head-failure.md")
    if workers - after:
        return failed(name, f"{len(workers - after)} worker pod(s) were replaced",
                      "GCS FT did not hold: the workers lost the GCS (Redis reachable? "
                      "RAY_gcs_rpc_server_reconnect_timeout_s); docs/head-failure.md")
    return passed(name, f"new head Ready, {len(after)} worker pod(s) kept, serving again")


# -------------------------------------------------------------------------------------- main
def _guard(name: str, fn: Callable[[], list[Result]]) -> list[Result]:
    try:
        return fn()
    except (RuntimeError, httpx.HTTPError, subprocess.TimeoutExpired, KeyError,
            json.JSONDecodeError) as exc:
        return [failed(name, f"{type(exc).__name__}: {exc}",
                       "can kubectl reach the cluster (KUBECONFIG) and is the stack deployed?")]


def run(args: argparse.Namespace, kube: Kube) -> list[Result]:
    groups = set(args.checks.split(",")) if args.checks else set(GROUPS)
    key = args.key or os.environ.get("VERIFY_API_KEY")
    out: list[Result] = []
    if "cluster" in groups:
        out += _guard("RayService", lambda: [check_rayservice(kube)])
        out += _guard("autoscaler", lambda: [check_autoscaler(kube)])
        out += _guard("worker groups", lambda: check_worker_groups(kube))

    def serve_probe() -> list[Result]:
        if args.serve_url:
            return check_serving("serve Service", args.serve_url, key, args.model, args.timeout)
        with kube.port_forward(NAMESPACE, f"svc/{serve_service_name(NAME)}", SERVE_PORT) as url:
            return check_serving("serve Service", url, key, args.model, args.timeout)

    if "serving" in groups:
        out += _guard("serve Service", serve_probe)
    if "alb" in groups:
        if args.alb_url:
            out += check_serving("ALB", args.alb_url, key, args.model, args.timeout)
        else:
            out.append(skipped("chat completion through the ALB",
                               "--alb-url https://<the ALB's DNS name> (stacks with the ALB)"))
    if groups & {"prometheus", "dashboards"}:
        def prom(url: str) -> list[Result]:
            res = [check_targets(url)] if "prometheus" in groups else []
            if "dashboards" in groups:
                res += check_dashboards(url, all_specs(), dict(v.split("=", 1) for v in args.var))
            return res

        if args.prometheus:
            out += _guard("Prometheus", lambda: prom(args.prometheus.rstrip("/")))
        else:
            def forwarded() -> list[Result]:
                with kube.port_forward(MONITORING_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}",
                                       9090) as url:
                    return prom(url)
            out += _guard("Prometheus", forwarded)
    if args.disruptive:
        if args.stack == "prod" and not args.confirm_prod_head_restart:
            out.append(failed("head restart", "refused on prod",
                              "add --confirm-prod-head-restart to restart prod's Ray head"))
        else:
            out += _guard("head restart", lambda: [check_head_restart(kube, serve_probe)])
    return out


def report(results: list[Result]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.status:4}  {r.name}: {r.detail}")
        if r.fix:
            lines.append(f"      what to do: {r.fix}")
    failures = sum(r.status == "FAIL" for r in results)
    skips = sum(r.status == "SKIP" for r in results)
    lines.append(f"\n{len(results) - failures - skips} passed, {failures} failed, {skips} skipped")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stack", required=True, help="dev, staging, prod or a fork's name")
    p.add_argument("--checks", default="", help=f"comma-separated groups of {GROUPS} (all)")
    p.add_argument("--key", help="an API key of the stack (default: env VERIFY_API_KEY)")
    p.add_argument("--model", help="model id to ask (default: the first of /v1/models)")
    p.add_argument("--serve-url", help="reach Serve here instead of a kubectl port-forward")
    p.add_argument("--alb-url", help="https URL of the ALB (the name its certificate is for)")
    p.add_argument("--prometheus", help="Prometheus URL instead of a kubectl port-forward")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="dashboard template variable (tools.dashboards_check)")
    p.add_argument("--timeout", type=float, default=600,
                   help="seconds one chat completion may take (a cold GPU pool takes minutes)")
    p.add_argument("--disruptive", action="store_true",
                   help="also delete the Ray head pod and check the platform comes back")
    p.add_argument("--confirm-prod-head-restart", action="store_true",
                   help="allow --disruptive on the prod stack")
    return p


def main(argv: list[str] | None = None, kube: Kube | None = None) -> int:
    args = parser().parse_args(argv)
    results = run(args, kube or Kube())
    print(report(results), end="")
    return 1 if any(r.status == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
