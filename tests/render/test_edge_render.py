"""The serving edge as rendered per stack: the API keys Secret and its mount, the Ray pods'
NetworkPolicies, and (with `exposure.alb.enabled`) the Load Balancer Controller and the ALB's
Ingress, with their creation order."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import yaml

from infra import versions
from infra.platform import kuberay, monitoring
from infra.serving.api_keys import KEYS_FILE, MOUNT_DIR, SECRET_NAME
from infra.serving.exposure import ALB, SERVE_PORT, SERVICE_ACCOUNT
from infra.serving.exposure import NAMESPACE as LBC_NAMESPACE
from infra.serving.lb_controller_iam import controller_policy
from infra.serving.rayservice import NAMESPACE
from tests.render.test_core_objects import core_objects, kubernetes_version
from tests.render.test_exposure_scan import exposure_problems
from tests.render.test_helm_values import check_release
from tests.support.k8s_schema import core_object_errors
from tests.support.ordering import cluster_order_problems, node_order_problems
from tools.mocks import Resource
from tools.render import STACKS, Rendered, render_stack

Render = Callable[[str], Rendered]
RAYSERVICE = "kubernetes:ray.io/v1:RayService"
SECRET = "kubernetes:core/v1:Secret"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
RELEASE = "kubernetes:helm.sh/v3:Release"
CERT = "arn:aws:acm:us-west-2:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
KEYS = {"team-a": "sk-team-a-0123456789abcdef", "team-b": "sk-team-b-0123456789abcdef"}


@cache
def with_alb(stack: str) -> Rendered:
    alb = {"enabled": True, "certificateArn": CERT, "scheme": "internet-facing",
           "allowedCidrs": ["198.51.100.0/24"]}
    return render_stack(stack, overrides={"exposure": {"alb": alb}})


def one(r: Rendered, typ: str, name: str | None = None) -> Resource:
    found = [x for x in r.of_type(typ)
             if name is None or (x.inputs.get("metadata") or {}).get("name") == name]
    assert len(found) == 1, f"{len(found)} {typ} {name or ''}"
    return found[0]


def pod_templates(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"] for g in groups]


@pytest.mark.parametrize("stack", STACKS)
def test_every_ray_pod_mounts_the_keys_secret_and_the_app_reads_it(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    secret = one(r, SECRET, SECRET_NAME)
    assert secret.inputs["metadata"]["namespace"] == NAMESPACE
    rs = one(r, RAYSERVICE).inputs
    for spec in pod_templates(rs):
        (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName")
                     == SECRET_NAME]
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"]
                    if m["name"] == volume["name"]]
        assert mount["mountPath"] == MOUNT_DIR and "subPath" not in mount
    apps = yaml.safe_load(rs["spec"]["serveConfigV2"])["applications"]
    assert apps and all(a["args"]["auth"]["keysFile"] == KEYS_FILE for a in apps)


@pytest.mark.parametrize("stack", STACKS)
def test_the_secret_and_the_policies_exist_before_the_ray_pods(
    stack: str, rendered: Render
) -> None:
    r = rendered(stack)
    rs = one(r, RAYSERVICE)
    first = {one(r, SECRET, SECRET_NAME).urn, *(p.urn for p in r.of_type(POLICY))}
    # The keys Secret and five Ray policies, plus the in-cluster Redis' own policy (dev), plus
    # with RAG on (staging, prod) the 2 database egress policies.
    assert len(first) == 6 + (stack == "dev") + 2 * (stack != "dev")
    assert first <= set(r.graph().waits_for(rs.urn)), "the RayService must wait for them"


@pytest.mark.parametrize("stack", STACKS)
def test_network_policies_name_the_operator_and_prometheus_namespaces(
    stack: str, rendered: Render
) -> None:
    policies = {p.inputs["metadata"]["name"]: p.inputs for p in rendered(stack).of_type(POLICY)}
    assert all(p["metadata"]["namespace"] == NAMESPACE for p in policies.values())
    assert kuberay.NAMESPACE in json.dumps(policies["ray-dashboard-from-operator"])
    assert monitoring.NAMESPACE in json.dumps(policies["ray-metrics-from-prometheus"])
    assert "0.0.0.0/0" not in json.dumps([p["spec"].get("ingress") for p in policies.values()])


def test_rotating_keys_changes_no_other_object() -> None:
    """Different keys (and none at all) render every resource but the Secret's masked data
    identically: no pod template, no serveConfigV2, nothing else follows the keys."""
    def inputs(keys: dict[str, str] | None) -> list[tuple[str, str, str]]:
        over = {"apiKeys": keys} if keys is not None else {}
        r = render_stack("dev", overrides=over, secret_keys=list(over))
        return sorted((x.type, x.name, json.dumps(x.inputs, sort_keys=True)) for x in r.resources)

    rotated = {"team-a": "sk-team-a-rotated-0000000", "team-c": "sk-team-c-0123456789abcd"}
    assert inputs(KEYS) == inputs(rotated) == inputs(None)


# ------------------------------------------------------------------------------------- ALB
def test_no_alb_and_no_controller_unless_enabled(rendered: Render) -> None:
    for stack in STACKS:
        r = rendered(stack)
        assert not r.of_type(INGRESS)
        assert all(x.inputs.get("chart") != versions.AWS_LB_CONTROLLER_CHART.chart
                   for x in r.of_type(RELEASE))


@pytest.mark.parametrize("stack", STACKS)
def test_alb_renders_pinned_controller_and_ingress_to_the_serve_port(stack: str) -> None:
    r = with_alb(stack)
    chart = versions.AWS_LB_CONTROLLER_CHART
    (release,) = [x for x in r.of_type(RELEASE) if x.inputs.get("chart") == chart.chart]
    assert release.inputs["version"] == chart.version
    assert release.inputs["namespace"] == LBC_NAMESPACE
    problems, _ = check_release(release)
    assert problems == []
    (assoc,) = [x for x in r.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if x.inputs["serviceAccount"] == SERVICE_ACCOUNT]
    assert assoc.inputs["namespace"] == LBC_NAMESPACE
    (policy,) = [x for x in r.of_type("aws:iam/rolePolicy:RolePolicy")
                 if "lb-controller" in x.name]
    assert json.loads(policy.inputs["policy"]) == controller_policy("aws")

    ingress = one(r, INGRESS).inputs
    rs = one(r, RAYSERVICE)
    backend = ingress["spec"]["defaultBackend"]["service"]
    assert backend == {"name": f"{rs.inputs['metadata']['name']}-serve-svc",
                       "port": {"number": SERVE_PORT}}
    assert ingress["metadata"]["namespace"] == rs.inputs["metadata"]["namespace"]
    assert ingress["metadata"]["annotations"][f"{ALB}/certificate-arn"] == CERT
    # Created after the controller (its webhook) and the RayService; deleted before both.
    waits = set(r.graph().waits_for(one(r, INGRESS).urn))
    assert {release.urn, rs.urn} <= waits


@pytest.mark.parametrize("stack", STACKS)
def test_alb_render_keeps_every_rule(stack: str) -> None:
    r = with_alb(stack)
    assert exposure_problems(r) == []
    assert cluster_order_problems(r) == [] and node_order_problems(r) == []
    version = kubernetes_version(r)
    assert {f"{o['kind']}/{o['metadata']['name']}": e for o in core_objects(r)
            if (e := core_object_errors(o, version))} == {}


@pytest.mark.parametrize("stack", STACKS)
def test_with_the_alb_the_serving_namespace_gets_the_pod_readiness_gate(
    stack: str, rendered: Render
) -> None:
    """The Load Balancer Controller injects its readiness gate only in namespaces labelled so:
    a pod is Ready only once its ALB target is healthy (a traffic switch never lands on targets
    the ALB has not checked)."""
    def labels(r: Rendered) -> dict[str, str]:
        return one(r, "kubernetes:core/v1:Namespace", NAMESPACE).inputs["metadata"].get(
            "labels") or {}

    assert labels(with_alb(stack)).get("elbv2.k8s.aws/pod-readiness-gate-inject") == "enabled"
    assert "elbv2.k8s.aws/pod-readiness-gate-inject" not in labels(rendered(stack))
