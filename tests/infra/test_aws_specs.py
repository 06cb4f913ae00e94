"""Unit tests of the AWS foundation's pure spec builders (no Pulumi engine involved)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import Any

import pytest
from parliament import analyze_policy_string, enhance_finding

from infra import labels, versions
from infra.catalog import CATALOG
from infra.cluster import access_entries, endpoint_settings, gp3_storage_class
from infra.config import ClusterConfig, GpuNodePoolConfig, KarpenterConfig
from infra.gpu import dcgm_exporter_values, device_plugin_values, needs_device_plugin
from infra.karpenter import (
    ami_alias,
    controller_values,
    gpu_node_class,
    head_node_class,
    head_nodepool,
    nodepool,
)
from infra.karpenter_iam import (
    PARLIAMENT_EXCEPTIONS,
    controller_policy,
    interruption_rules,
    queue_policy,
)
from infra.network import flow_log_policy, subnet_plan
from tests.support.crds import validate_custom_resource

ACCOUNT = "123456789012"
CLUSTER = "llm-platform-test"
QUEUE_ARN = f"arn:aws:sqs:us-west-2:{ACCOUNT}:{CLUSTER}"
SEVERITY = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def pool(**kw: Any) -> GpuNodePoolConfig:
    base = {"name": "g6e", "family": "g6e", "limits": {"gpus": 8}}
    return GpuNodePoolConfig.model_validate({**base, **kw})


def parliament_problems(doc: dict[str, Any], exceptions: dict[str, set[str]]) -> list[str]:
    """Findings above LOW, statement by statement, minus the reasoned exceptions by Sid."""
    out = []
    for st in doc["Statement"]:
        single = json.dumps({"Version": "2012-10-17", "Statement": [st]})
        for f in analyze_policy_string(single).findings:
            enhance_finding(f)
            if SEVERITY.get(f.severity, 4) <= SEVERITY["LOW"]:
                continue
            if f.issue in exceptions.get(st.get("Sid", ""), set()):
                continue
            out.append(f"{st.get('Sid')}: {f.issue} {f.severity} {f.detail}")
    return out


# ------------------------------------------------------------------------------------ network
@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "10.20.0.0/18", "172.16.0.0/20"])
@pytest.mark.parametrize("azs", [2, 3, 6])
def test_subnets_are_disjoint_and_inside_the_vpc(cidr: str, azs: int) -> None:
    vpc = IPv4Network(cidr)
    plan = subnet_plan(vpc, azs, IPv4Network("100.64.0.0/16"))
    assert len(plan.private) == len(plan.public) == len(plan.pods) == azs
    subnets = plan.private + plan.public
    assert all(s.subnet_of(vpc) for s in subnets)
    assert all(
        not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:]
    )
    assert all(s.subnet_of(IPv4Network("100.64.0.0/16")) for s in plan.pods)
    # Private subnets hold the pods (VPC CNI): they get the big ranges.
    assert plan.private[0].num_addresses > plan.public[0].num_addresses


def test_subnet_plan_rejects_more_than_six_zones() -> None:
    with pytest.raises(ValueError):
        subnet_plan(IPv4Network("10.0.0.0/16"), 7)


# ------------------------------------------------------------------------------------ cluster
def test_access_entries_map_admin_and_view_roles() -> None:
    cfg = ClusterConfig.model_validate({
        "adminRoleArns": [f"arn:aws:iam::{ACCOUNT}:role/admin"],
        "readOnlyRoleArns": [f"arn:aws:iam::{ACCOUNT}:role/ro", f"arn:aws:iam::{ACCOUNT}:role/r2"],
    })
    entries = access_entries(cfg)
    assert set(entries) == {"admin-0", "view-0", "view-1"}
    assert entries["admin-0"]["access_policies"]["admin"]["policy_arn"].endswith(
        "AmazonEKSClusterAdminPolicy"
    )
    assert entries["view-1"]["access_policies"]["view"]["policy_arn"].endswith(
        "AmazonEKSViewPolicy"
    )
    assert all(
        p["access_scope"] == {"type": "cluster"}
        for e in entries.values() for p in e["access_policies"].values()
    )


def test_endpoint_private_unless_public_with_allow_list() -> None:
    private = endpoint_settings(ClusterConfig())
    assert private == {
        "endpoint_private_access": True, "endpoint_public_access": False,
        "public_access_cidrs": None,
    }
    public = endpoint_settings(ClusterConfig.model_validate(
        {"endpointAccess": "public", "publicAccessCidrs": ["203.0.113.0/24"]}
    ))
    assert public["endpoint_public_access"] and public["public_access_cidrs"] == ["203.0.113.0/24"]


def test_default_storage_class_is_encrypted_gp3_on_ebs_csi() -> None:
    sc = gp3_storage_class()
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"]["type"] == "gp3" and sc["parameters"]["encrypted"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"


# ---------------------------------------------------------------------------------- nodepools
def test_gpu_nodepool_has_taint_labels_limits_and_empty_only_disruption() -> None:
    obj = nodepool(pool(sizes=["xlarge", "12xlarge"], capacityTypes=["spot", "on-demand"],
                        limits={"gpus": 8, "cpu": 96, "memoryGib": 512}, weight=70,
                        consolidateAfter="15m", disruptionBudget="1"))
    spec = obj["spec"]
    assert spec["limits"] == {"nvidia.com/gpu": 8, "cpu": 96, "memory": "512Gi"}
    assert spec["weight"] == 70
    assert spec["disruption"] == {
        "consolidationPolicy": "WhenEmpty", "consolidateAfter": "15m", "budgets": [{"nodes": "1"}]
    }
    tmpl = spec["template"]
    assert tmpl["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert tmpl["metadata"]["labels"] == {
        labels.NODE_CLASS_LABEL: "gpu", labels.GPU_POOL_LABEL: "g6e",
        labels.GPU_MODEL_LABEL: "L40S", "nvidia.com/gpu.present": "true",
    }
    reqs = {r["key"]: r["values"] for r in tmpl["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == ["g6e.xlarge", "g6e.12xlarge"]
    assert reqs["karpenter.sh/capacity-type"] == ["spot", "on-demand"]
    assert tmpl["spec"]["expireAfter"] == "Never"
    assert validate_custom_resource(obj) == []


@pytest.mark.parametrize("family", sorted(CATALOG))
def test_default_sizes_are_every_catalogued_size(family: str) -> None:
    obj = nodepool(pool(name=family, family=family))
    reqs = {r["key"]: r["values"] for r in obj["spec"]["template"]["spec"]["requirements"]}
    assert reqs["node.kubernetes.io/instance-type"] == [
        f"{family}.{s}" for s in CATALOG[family]
    ]
    assert validate_custom_resource(obj) == []


def test_worker_scheduling_matches_the_nodepool_labels_and_taint() -> None:
    """The contract the RayService worker groups rely on: their selector is a subset of the
    pool's node labels and their toleration tolerates the pool's taint."""
    obj = nodepool(pool(name="big", family="p4d"))
    node_labels = obj["spec"]["template"]["metadata"]["labels"]
    sched = labels.gpu_worker_scheduling("big")
    assert sched["nodeSelector"].items() <= node_labels.items()
    (taint,) = obj["spec"]["template"]["spec"]["taints"]
    assert any(
        t["key"] == taint["key"] and t["effect"] == taint["effect"] and t["operator"] == "Exists"
        for t in sched["tolerations"]
    )
    head = head_nodepool(KarpenterConfig())
    head_labels = head["spec"]["template"]["metadata"]["labels"]
    assert labels.ray_head_scheduling()["nodeSelector"].items() <= head_labels.items()
    assert "taints" not in head["spec"]["template"]["spec"]


def test_head_pool_is_on_demand_cpu_with_a_limit() -> None:
    obj = head_nodepool(KarpenterConfig.model_validate({"headPoolCpuLimit": 32}))
    reqs = {r["key"]: r["values"] for r in obj["spec"]["template"]["spec"]["requirements"]}
    assert reqs["karpenter.sh/capacity-type"] == ["on-demand"]
    assert reqs["karpenter.k8s.aws/instance-family"] == ["m7i", "m6i"]
    assert obj["spec"]["limits"] == {"cpu": 32}
    assert obj["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert validate_custom_resource(obj) == []


# -------------------------------------------------------------------------------- node classes
def test_gpu_node_class_al2023_defaults() -> None:
    obj = gpu_node_class(KarpenterConfig(), CLUSTER, "profile-1", {"team": "ml"})
    spec = obj["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    (root,) = spec["blockDeviceMappings"]
    assert root["rootVolume"] is True
    assert root["ebs"]["volumeType"] == "gp3" and root["ebs"]["encrypted"] is True
    assert int(root["ebs"]["volumeSize"].removesuffix("Gi")) >= 200
    assert "snapshotID" not in root["ebs"]
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert spec["instanceProfile"] == "profile-1" and "role" not in spec
    assert validate_custom_resource(obj) == []


def test_gpu_node_class_bottlerocket_pinned_with_image_cache() -> None:
    cfg = KarpenterConfig.model_validate({
        "gpuAmiFamily": "bottlerocket-nvidia", "gpuAmiVersion": "v1.50.0",
        "rootVolumeGib": 400, "imageCacheSnapshotId": "snap-0123456789abcdef0",
    })
    obj = gpu_node_class(cfg, CLUSTER, "p", {})
    assert obj["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@v1.50.0"}]
    os_vol, data = obj["spec"]["blockDeviceMappings"]
    assert os_vol["deviceName"] == "/dev/xvda" and data["deviceName"] == "/dev/xvdb"
    assert data["ebs"]["snapshotID"] == "snap-0123456789abcdef0"
    assert data["ebs"]["volumeSize"] == "400Gi" and data["ebs"]["encrypted"] is True
    assert validate_custom_resource(obj) == []
    assert not needs_device_plugin(cfg.gpu_ami_family)
    assert needs_device_plugin(KarpenterConfig().gpu_ami_family)


def test_ami_alias_pinned_and_head_class_follows_al2023_pin() -> None:
    cfg = KarpenterConfig.model_validate({"gpuAmiVersion": "v20251108"})
    assert ami_alias(cfg) == "al2023@v20251108"
    head = head_node_class(cfg, CLUSTER, "p", {})
    assert head["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20251108"}]
    assert validate_custom_resource(head) == []


# ------------------------------------------------------------------------------ interruption
def test_interruption_rules_cover_the_four_event_kinds() -> None:
    rules = interruption_rules()
    kinds = {t for p in rules.values() for t in p["detail-type"]}
    assert kinds == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
    }
    assert rules["scheduled-change"]["detail"]["eventTypeCategory"] == ["scheduledChange"]


def test_controller_values_wire_queue_and_system_nodes() -> None:
    v = controller_values(CLUSTER, "q1")
    assert v["settings"] == {"clusterName": CLUSTER, "interruptionQueue": "q1"}
    assert v["nodeSelector"][labels.NODE_CLASS_LABEL] == labels.NODE_CLASS_SYSTEM
    assert labels.SYSTEM_TOLERATION in v["tolerations"]
    img = v["controller"]["image"]
    assert img["tag"] == versions.KARPENTER_VERSION and img["digest"].startswith("sha256:")


def test_gpu_daemonsets_only_on_gpu_nodes_and_scrapeable() -> None:
    for values in (device_plugin_values(), dcgm_exporter_values()):
        assert values["nodeSelector"] == {labels.NODE_CLASS_LABEL: labels.NODE_CLASS_GPU}
        assert labels.GPU_TOLERATION in values["tolerations"]
        assert values["image"]["tag"] and values["image"]["tag"] != "latest"
    assert dcgm_exporter_values()["podLabels"] == {labels.SCRAPE_LABEL: "dcgm-exporter"}


# ----------------------------------------------------------------------------------- policies
def _controller_policy() -> dict[str, Any]:
    return controller_policy(
        partition="aws", region="us-west-2", account=ACCOUNT, cluster_name=CLUSTER,
        queue_arn=QUEUE_ARN, node_role_arn=f"arn:aws:iam::{ACCOUNT}:role/karpenter-node-1",
        instance_profile_arn=f"arn:aws:iam::{ACCOUNT}:instance-profile/karpenter-node-1",
    )


def test_controller_policy_passes_parliament_with_reasoned_exceptions_only() -> None:
    assert parliament_problems(_controller_policy(), PARLIAMENT_EXCEPTIONS) == []
    # Every exception is still needed (a stale exception would hide a future finding).
    sids = {st["Sid"] for st in _controller_policy()["Statement"]}
    assert set(PARLIAMENT_EXCEPTIONS) <= sids


def test_controller_policy_is_scoped_to_this_cluster() -> None:
    doc = _controller_policy()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        text = json.dumps(st)
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        writes = [a for a in actions if a.split(":")[1].startswith(
            ("Run", "Create", "Terminate", "Delete"))]
        if writes and st["Sid"] != "LaunchFromPublicImages":
            assert CLUSTER in text, f"{st['Sid']} writes without naming the cluster"
        assert "iam:CreateInstanceProfile" not in actions
        assert "*" not in actions


def test_flow_log_and_queue_policies_pass_parliament() -> None:
    group = f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:/aws/vpc/{CLUSTER}/flow-logs"
    assert parliament_problems(flow_log_policy(group), {}) == []
    rule = f"arn:aws:events:us-west-2:{ACCOUNT}:rule/spot"
    qp = queue_policy(QUEUE_ARN, [rule])
    assert parliament_problems(qp, {}) == []
    send = qp["Statement"][0]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"] == [rule]
