"""The whole policy pack over every stack's offline render, as CrossGuard would run it over a
preview: no mandatory violation in any stack, and for each mandatory policy one deliberately
broken copy of the prod render that makes it fire (so that a policy that never fires fails here).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import yaml

from policy.core import Resource, k8s_kind
from policy.offline import from_render, run
from policy.pack import POLICIES, context
from policy.pods import containers
from policy.rules import aws_s3
from tests.unit.policy import builders
from tools.render import STACKS, Rendered, stack_config

Break = Callable[[list[Resource]], list[Resource]]


def _stack(stack: str, rendered: Callable[[str], Rendered]) -> tuple[list[Resource], object]:
    values, _ = stack_config(stack)
    return from_render(rendered(stack).resources), context(stack, values)


@pytest.mark.parametrize("stack", STACKS)
def test_no_mandatory_violation_in_any_stack(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    resources, ctx = _stack(stack, rendered)
    found = run(resources, ctx)  # type: ignore[arg-type]
    mandatory = [str(v) for v in found if v.mandatory]
    assert mandatory == [], "\n".join(mandatory)


def test_the_pack_sees_the_objects_it_guards(rendered: Callable[[str], Rendered]) -> None:
    """A render the pack cannot read would pass trivially: check it finds what it must judge."""
    resources, _ = _stack("prod", rendered)
    kinds = {k8s_kind(r) for r in resources}
    types = {r.type for r in resources}
    assert {"NodePool", "EC2NodeClass"} <= kinds
    assert {"eks:index:Cluster", "aws:kms/key:Key",
            "aws:ec2/launchTemplate:LaunchTemplate"} <= types


# ------------------------------------------------------------------- one breaker per policy
def _one(resources: list[Resource], pred: Callable[[Resource], bool]) -> Resource:
    found = [r for r in resources if pred(r)]
    assert found, "the prod render lacks the resource this breaker needs"
    return found[0]


def _named_kind(kind: str, name: str | None = None) -> Callable[[Resource], bool]:
    return lambda r: k8s_kind(r) == kind and (
        name is None or r.props.get("metadata", {}).get("name") == name)


def _pod_owner(resources: list[Resource]) -> Resource:
    """A rendered object with containers, or (until the program declares one) a Deployment."""
    for r in resources:
        if any(True for _ in containers(r)):
            return r
    resources.append(builders.deployment())
    return resources[-1]


def _rayservice(resources: list[Resource]) -> Resource:
    for r in resources:
        if k8s_kind(r) == "RayService":
            return r
    resources.append(builders.rayservice())
    return resources[-1]


def _first_container(r: Resource) -> dict:
    return next(iter(containers(r)))[1]  # type: ignore[return-value]


def world_ingress(rs: list[Resource]) -> None:
    sg = _one(rs, lambda r: r.type == "aws:ec2/securityGroup:SecurityGroup")
    sg.props["ingress"] = [{"protocol": "tcp", "fromPort": 22, "toPort": 22,
                            "cidrBlocks": ["0.0.0.0/0"]}]


def public_endpoint(rs: list[Resource]) -> None:
    c = _one(rs, lambda r: r.type == "eks:index:Cluster")
    c.props["endpointPublicAccess"] = True
    c.props["publicAccessCidrs"] = ["0.0.0.0/0"]


def launch_template(rs: list[Resource]) -> None:
    lt = _one(rs, lambda r: r.type == "aws:ec2/launchTemplate:LaunchTemplate")
    lt.props["metadataOptions"]["httpTokens"] = "optional"


def no_rotation(rs: list[Resource]) -> None:
    _one(rs, lambda r: r.type == "aws:kms/key:Key").props["enableKeyRotation"] = False


def _bare_bucket(rs: list[Resource], drop: set[str]) -> None:
    rs[:] = [r for r in rs if r.type not in drop]
    if not any(r.type in aws_s3.BUCKETS for r in rs):
        rs.append(builders.res("aws:s3/bucket:Bucket", {"bucket": "models"}, name="models"))


def unencrypted_bucket(rs: list[Resource]) -> None:
    _bare_bucket(rs, aws_s3.SSE)


def public_bucket(rs: list[Resource]) -> None:
    _bare_bucket(rs, {aws_s3.PAB})


def nodepool_without_cpu_limit(rs: list[Resource]) -> None:
    del _one(rs, _named_kind("NodePool", "g6e")).props["spec"]["limits"]["cpu"]


def nodeclass_unencrypted(rs: list[Resource]) -> None:
    nc = _one(rs, _named_kind("EC2NodeClass", "gpu"))
    nc.props["spec"]["blockDeviceMappings"][0]["ebs"]["encrypted"] = False


def pricier_pool(rs: list[Resource]) -> None:
    limits = _one(rs, _named_kind("NodePool", "g6e")).props["spec"]["limits"]
    limits["nvidia.com/gpu"], limits["cpu"] = 64, 4096  # 64 x g6e.16xlarge alone: 484.94 USD/h


def implicit_upgrade(rs: list[Resource]) -> None:
    _rayservice(rs).props["spec"].pop("upgradeStrategy", None)


def gpu_head(rs: list[Resource]) -> None:
    head = _rayservice(rs).props["spec"]["rayClusterConfig"]["headGroupSpec"]
    head.setdefault("rayStartParams", {})["num-gpus"] = "1"


def deprecated_field(rs: list[Resource]) -> None:
    _rayservice(rs).props["spec"]["deploymentUnhealthySecondThreshold"] = 300


def floating_image(rs: list[Resource]) -> None:
    _first_container(_pod_owner(rs))["image"] = "rayproject/ray-llm:latest"


def no_requests(rs: list[Resource]) -> None:
    _first_container(_pod_owner(rs))["resources"] = {}


def secret_env(rs: list[Resource]) -> None:
    c = _first_container(_pod_owner(rs))
    c["env"] = [*(c.get("env") or []), {"name": "HF_TOKEN", "value": "hf_" + "x" * 34}]


def secret_configmap(rs: list[Resource]) -> None:
    rs.append(builders.res("kubernetes:core/v1:ConfigMap", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "leaky"},
        "data": {"slack-webhook": "https://hooks.slack.com/services/T0/B0/xyz"}}))


def secret_serve_config(rs: list[Resource]) -> None:
    spec = _rayservice(rs).props["spec"]
    doc = yaml.safe_load(spec["serveConfigV2"])
    app = doc["applications"][0]
    app.setdefault("runtime_env", {}).setdefault("env_vars", {})["HF_TOKEN"] = "hf_" + "y" * 34
    spec["serveConfigV2"] = yaml.safe_dump(doc)


def exposed_dashboard(rs: list[Resource]) -> None:
    rs.append(builders.k8s("Service", "v1", {"type": "LoadBalancer", "ports": [
        {"name": "dashboard", "port": 8265, "targetPort": 8265}]}, name="llm-head-svc"))


def unencrypted_db(rs: list[Resource]) -> None:
    _one(rs, lambda r: r.type == "aws:rds/cluster:Cluster").props["storageEncrypted"] = False


def public_db(rs: list[Resource]) -> None:
    inst = _one(rs, lambda r: r.type == "aws:rds/clusterInstance:ClusterInstance")
    inst.props["publiclyAccessible"] = True


BREAKERS: dict[str, Callable[[list[Resource]], None]] = {
    "no-world-open-ingress": world_ingress,
    "eks-endpoint-exposure": public_endpoint,
    "launch-template-imdsv2-encrypted": launch_template,
    "kms-key-rotation": no_rotation,
    "s3-bucket-encrypted": unencrypted_bucket,
    "s3-public-access-blocked": public_bucket,
    "gpu-nodepool-limits": nodepool_without_cpu_limit,
    "ec2nodeclass-imdsv2-encrypted": nodeclass_unencrypted,
    "gpu-cost-ceiling": pricier_pool,
    "rayservice-upgrade-strategy": implicit_upgrade,
    "rayservice-head-no-gpu": gpu_head,
    "rayservice-no-deprecated-fields": deprecated_field,
    "image-pinned": floating_image,
    "container-requests": no_requests,
    "no-plaintext-secret-env": secret_env,
    "no-plaintext-secret-configmap": secret_configmap,
    "no-plaintext-secret-serve-config": secret_serve_config,
    "ray-ports-not-exposed": exposed_dashboard,
    "rds-encrypted": unencrypted_db,
    "rds-not-public": public_db,
}


def test_every_mandatory_policy_has_a_breaker() -> None:
    assert {p.name for p in POLICIES if p.mandatory} == set(BREAKERS)


@pytest.mark.parametrize("policy", sorted(BREAKERS))
def test_a_broken_prod_render_makes_the_policy_fire(
    policy: str, rendered: Callable[[str], Rendered]
) -> None:
    resources, ctx = _stack("prod", rendered)
    broken = copy.deepcopy(resources)
    BREAKERS[policy](broken)
    fired = [v for v in run(broken, ctx) if v.mandatory]  # type: ignore[arg-type]
    assert policy in {v.policy for v in fired}, [str(v) for v in fired]
    # The message says what to change, about the resource that was broken.
    msg = next(v for v in fired if v.policy == policy).message
    assert any(word in msg for word in ("set", "remove", "add", "use", "pin", "put", "keep",
                                        "lower", "replace", "pass", "allow-list")), msg
