"""The AWS foundation as rendered per stack under the Pulumi mocks: environment differences,
teardown order, pinning, placement and policy coverage."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra import labels, versions
from infra.capacity.catalog import CATALOG
from infra.foundation.karpenter import NODECLASS_API, NODEPOOL_API
from tests.support.crds import validate_custom_resource
from tools.mocks import Resource
from tools.render import STACKS, Rendered, render_stack

Render = Callable[[str], Rendered]
EKS = "eks:index:Cluster"
NAT = "aws:ec2/natGateway:NatGateway"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODEPOOL = f"kubernetes:{NODEPOOL_API}:NodePool"
NODECLASS = f"kubernetes:{NODECLASS_API}:EC2NodeClass"
SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


def one(r: Rendered, typ: str) -> Resource:
    (res,) = r.of_type(typ)
    return res


def gpu_pools(r: Rendered) -> list[dict[str, Any]]:
    return [
        o for o in r.custom_resources()
        if o["kind"] == "NodePool" and "nvidia.com/gpu" in o["spec"].get("limits", {})
    ]


def capacity_types(pool: dict[str, Any]) -> list[str]:
    reqs = pool["spec"]["template"]["spec"]["requirements"]
    return next(r["values"] for r in reqs if r["key"] == "karpenter.sh/capacity-type")


# ---------------------------------------------------------------------------- prod vs dev
def test_prod_nat_per_az_dev_single(rendered: Render) -> None:
    assert len(rendered("prod").of_type(NAT)) == 3
    assert len(rendered("dev").of_type(NAT)) == 1
    assert len(rendered("staging").of_type(NAT)) == 1


def test_prod_private_endpoint_dev_public_with_allow_list(rendered: Render) -> None:
    for stack in ("prod", "staging"):
        eks = one(rendered(stack), EKS).inputs
        assert eks["endpointPrivateAccess"] is True and eks["endpointPublicAccess"] is False
        assert not eks.get("publicAccessCidrs")
    dev = one(rendered("dev"), EKS).inputs
    assert dev["endpointPublicAccess"] is True
    assert dev["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_prod_gpu_capacity_on_demand_dev_spot_allowed(rendered: Render) -> None:
    prod = gpu_pools(rendered("prod"))
    assert {p["metadata"]["name"] for p in prod} == {"g6e", "g5", "p4d"}
    assert all(capacity_types(p) == ["on-demand"] for p in prod)
    dev = gpu_pools(rendered("dev"))
    assert dev and all("spot" in capacity_types(p) for p in dev)


def test_prod_cluster_protected_dev_not(rendered: Render) -> None:
    prod = one(rendered("prod"), EKS)
    assert prod.protect and prod.inputs["deletionProtection"] is True
    assert rendered("prod").named("aws:kms/key:Key", "cluster-secrets").protect
    dev = one(rendered("dev"), EKS)
    assert not dev.protect and dev.inputs["deletionProtection"] is False


def test_flow_logs_in_prod_only(rendered: Render) -> None:
    assert len(rendered("prod").of_type("aws:ec2/flowLog:FlowLog")) == 1
    assert rendered("dev").of_type("aws:ec2/flowLog:FlowLog") == []


def test_prod_pins_the_gpu_ami(rendered: Render) -> None:
    classes = {o["metadata"]["name"]: o for o in rendered("prod").custom_resources()
               if o["kind"] == "EC2NodeClass"}
    assert classes["gpu"]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]


# ----------------------------------------------------------------------------- every stack
@pytest.mark.parametrize("stack", STACKS)
def test_cluster_settings(stack: str, rendered: Render) -> None:
    r = rendered(stack)
    eks = one(r, EKS).inputs
    assert eks["name"] == f"llm-platform-{stack}"
    assert eks["authenticationMode"] == "API"
    assert eks["skipDefaultNodeGroup"] is True
    assert eks["encryptionConfigKeyArn"]
    assert set(eks["enabledClusterLogTypes"]) == {
        "api", "audit", "authenticator", "controllerManager", "scheduler"
    }
    assert eks["vpcCniOptions"]["addonVersion"] and eks["kubeProxyAddonOptions"]["version"]
    addons = {a.inputs["addonName"]: a.inputs for a in r.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    assert all(a["addonVersion"] for a in addons.values())
    (assoc,) = addons["aws-ebs-csi-driver"]["podIdentityAssociations"]
    assert assoc["serviceAccount"] == "ebs-csi-controller-sa"
    provider = one(r, "pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == f"llm-platform-{stack}"
    # Key rotation patches the Secret in place instead of delete + recreate (serving-edge.md).
    # (Provider inputs reach the engine as strings, as every provider config does.)
    assert provider.inputs["enableSecretMutable"] == "true"
    sc = one(r, "kubernetes:storage.k8s.io/v1:StorageClass").inputs
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"]["type"] == "gp3"


@pytest.mark.parametrize("stack", STACKS)
def test_system_node_group_keeps_gpu_work_off_and_system_pods_on(
    stack: str, rendered: Render
) -> None:
    ng = one(rendered(stack), "aws:eks/nodeGroup:NodeGroup").inputs
    assert ng["capacityType"] == "ON_DEMAND"
    assert ng["labels"] == {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_SYSTEM}
    assert ng["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert not any(t.split(".")[0] in CATALOG for t in ng["instanceTypes"])
    lt = one(rendered(stack), "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert lt["metadataOptions"]["httpTokens"] == "required"
    assert lt["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    # GPU nodes are tainted; nothing scheduled on system nodes tolerates that taint.
    for pool in gpu_pools(rendered(stack)):
        assert labels.GPU_TAINT in pool["spec"]["template"]["spec"]["taints"]


@pytest.mark.parametrize("stack", STACKS)
def test_teardown_order(stack: str, rendered: Render) -> None:
    """Destroy runs in reverse: NodePools, then EC2NodeClasses, then the controller, then the
    CRDs, then the system node group."""
    r = rendered(stack)
    releases = {x.name: x for x in r.of_type(RELEASE)}
    controller, crds = releases["karpenter-controller"], releases["karpenter-crd"]
    node_group = one(r, "aws:eks/nodeGroup:NodeGroup")
    classes = {x.inputs["metadata"]["name"]: x for x in r.of_type(NODECLASS)}
    pools = r.of_type(NODEPOOL)
    assert pools and classes
    for pool in pools:
        ref = pool.inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"]
        assert classes[ref].urn in pool.depends_on
    for cls in classes.values():
        assert controller.urn in cls.depends_on
    assert crds.urn in controller.depends_on
    assert node_group.urn in crds.depends_on and node_group.urn in controller.depends_on


@pytest.mark.parametrize("stack", STACKS)
def test_karpenter_wiring(stack: str, rendered: Render) -> None:
    r = rendered(stack)
    queue = one(r, "aws:sqs/queue:Queue").inputs
    assert queue["sqsManagedSseEnabled"] is True
    controller = next(x for x in r.of_type(RELEASE) if x.name == "karpenter-controller").inputs
    assert controller["values"]["settings"] == {
        "clusterName": f"llm-platform-{stack}", "interruptionQueue": queue["name"]
    }
    assert controller["skipCrds"] is True
    patterns = [json.loads(x.inputs["eventPattern"])
                for x in r.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert len(patterns) == len(r.of_type("aws:cloudwatch/eventTarget:EventTarget")) == 4
    access = one(r, "aws:eks/accessEntry:AccessEntry").inputs
    assert access["type"] == "EC2_LINUX"
    pia = r.named("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                  "karpenter-controller").inputs
    assert (pia["namespace"], pia["serviceAccount"]) == ("kube-system", "karpenter")
    private = [s.inputs for s in r.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name]
    assert private and all(
        s["tags"]["karpenter.sh/discovery"] == f"llm-platform-{stack}" for s in private
    )
    tag = one(r, "aws:ec2/tag:Tag").inputs
    assert (tag["key"], tag["value"]) == ("karpenter.sh/discovery", f"llm-platform-{stack}")


@pytest.mark.parametrize("stack", STACKS)
def test_every_karpenter_resource_validates_against_its_crd(stack: str, rendered: Render) -> None:
    crs = [o for o in rendered(stack).custom_resources()
           if o["apiVersion"] in (NODEPOOL_API, NODECLASS_API)]
    assert {o["kind"] for o in crs} == {"NodePool", "EC2NodeClass"}
    problems = {o["metadata"]["name"]: validate_custom_resource(o) for o in crs}
    assert all(not p for p in problems.values()), problems


def _images(values: Any) -> Iterator[dict[str, Any]]:
    if isinstance(values, dict):
        if "repository" in values and "tag" in values:
            yield values
        for v in values.values():
            yield from _images(v)
    elif isinstance(values, list):
        for v in values:
            yield from _images(v)


@pytest.mark.parametrize("stack", STACKS)
def test_every_helm_release_and_image_is_pinned(stack: str, rendered: Render) -> None:
    pinned_charts = {(c.chart, c.version) for c in versions.ALL_CHARTS}
    pinned_images = {(i.repository, i.tag) for i in versions.ALL_IMAGES}
    releases = rendered(stack).of_type(RELEASE)
    assert releases
    for rel in releases:
        inputs = rel.inputs
        assert SEMVER.match(inputs.get("version", "")), f"{rel.name}: chart version not pinned"
        assert (inputs["chart"], inputs["version"]) in pinned_charts
        for image in _images(inputs.get("values", {})):
            assert image["tag"] not in ("", "latest"), f"{rel.name}: floating image tag"
            assert (image["repository"], image["tag"]) in pinned_images


@pytest.mark.parametrize("stack", STACKS)
def test_every_policy_document_is_one_the_parliament_tests_cover(
    stack: str, rendered: Render
) -> None:
    """test_aws_specs runs parliament over the policy builders; this makes sure the render has
    no other policy document that would escape that check, and that trust policies (which
    parliament does not audit) trust one AWS service and never a wildcard."""
    r = rendered(stack)
    docs = {(x.type, x.name): x.inputs for x in r.resources
            if "policy" in x.inputs and x.type.startswith("aws:")}
    expected = {
        ("aws:iam/rolePolicy:RolePolicy", "karpenter-controller"),
        ("aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruptions"),
        # parliament-checked in tests/unit/infra/test_model_store.py
        ("aws:iam/rolePolicy:RolePolicy", "model-store-reader"),
        ("aws:s3/bucketPolicy:BucketPolicy", "model-store-tls-only"),
    }
    if stack != "dev":  # flow logs are off in the dev profile only
        expected.add(("aws:iam/rolePolicy:RolePolicy", "network-flow-logs"))
    if stack != "dev":  # RAG is on in staging and prod; parliament-checked in test_vector_db.py
        expected.add(("aws:iam/rolePolicy:RolePolicy", "vector-db-connect"))
        expected.add(("aws:iam/rolePolicy:RolePolicy", "vector-db-migrate"))
    assert set(docs) == expected
    for role in r.of_type("aws:iam/role:Role"):
        trust = json.loads(role.inputs["assumeRolePolicy"])
        for st in trust["Statement"]:
            assert st["Effect"] == "Allow"
            assert set(st["Principal"]) == {"Service"}
            assert st["Principal"]["Service"].endswith(".amazonaws.com")


@pytest.mark.parametrize("stack", STACKS)
def test_ebs_csi_role_has_only_the_aws_managed_policy(stack: str, rendered: Render) -> None:
    # Upstream publishes no policy file for the EBS CSI driver: AWS maintains the managed
    # AmazonEBSCSIDriverPolicy, and the role gets exactly that, no inline policy.
    r = rendered(stack)
    attachments = r.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    attached = [a.inputs["policyArn"] for a in attachments if a.inputs["role"] == "cluster-ebs-csi"]
    assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    inline = [p.name for p in r.of_type("aws:iam/rolePolicy:RolePolicy") if "ebs" in p.name]
    assert inline == []


def test_pod_cidr_turns_on_reserved_enis() -> None:
    r = render_stack("dev", overrides={"network": {"natGateways": "single", "flowLogs": False,
                                                   "podCidr": "100.64.0.0/16"}})
    (controller,) = [x for x in r.of_type(RELEASE) if x.inputs["name"] == "karpenter"]
    assert controller.inputs["values"]["settings"]["reservedENIs"] == "1"
    eks = one(r, EKS).inputs
    assert eks["vpcCniOptions"]["cniCustomNetworkCfg"] is True
    assert eks["vpcCniOptions"]["enableNetworkPolicy"] is True


def test_pod_cidr_eniconfigs_exist_before_the_system_nodes() -> None:
    r = render_stack("dev", overrides={"network": {"natGateways": "single", "flowLogs": False,
                                                   "podCidr": "100.64.0.0/16"}})
    graph = r.graph()
    (nodes,) = [u for u, x in graph.nodes.items() if x.type == "aws:eks/nodeGroup:NodeGroup"]
    eni = {u for u, x in graph.nodes.items() if x.type.endswith(":ENIConfig")}
    assert len(eni) == 3 and eni <= graph.waits_for(nodes).keys()
