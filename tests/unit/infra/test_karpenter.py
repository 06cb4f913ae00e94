"""Unit tests of infra/foundation/karpenter.py: NodePools, EC2NodeClasses and controller values,
validated against the upstream CRD schemas."""

from __future__ import annotations

from typing import Any

import pytest

from infra import labels, versions
from infra.capacity.catalog import CATALOG
from infra.config.gpu_node_pools import GpuNodePoolConfig
from infra.config.karpenter import KarpenterConfig
from infra.foundation.karpenter import (
    ami_alias,
    controller_values,
    gpu_node_class,
    head_node_class,
    head_nodepool,
    nodepool,
)
from tests.support.crds import validate_custom_resource
from tests.support.specs import CLUSTER


def pool(**kw: Any) -> GpuNodePoolConfig:
    base = {"name": "g6e", "family": "g6e", "limits": {"gpus": 8}}
    return GpuNodePoolConfig.model_validate({**base, **kw})


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


def test_ami_alias_pinned_and_head_class_follows_al2023_pin() -> None:
    cfg = KarpenterConfig.model_validate({"gpuAmiVersion": "v20251108"})
    assert ami_alias(cfg) == "al2023@v20251108"
    head = head_node_class(cfg, CLUSTER, "p", {})
    assert head["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20251108"}]
    assert validate_custom_resource(head) == []


def test_controller_values_wire_queue_and_system_nodes() -> None:
    v = controller_values(CLUSTER, "q1")
    assert v["settings"] == {"clusterName": CLUSTER, "interruptionQueue": "q1"}
    assert v["nodeSelector"][labels.NODE_CLASS_LABEL] == labels.NODE_CLASS_SYSTEM
    assert labels.SYSTEM_TOLERATION in v["tolerations"]
    img = v["controller"]["image"]
    assert img["tag"] == versions.KARPENTER_VERSION and img["digest"].startswith("sha256:")


def test_custom_networking_reserves_the_primary_eni() -> None:
    # With network.podCidr, pods never use the node's primary ENI (VPC CNI custom networking).
    assert controller_values(CLUSTER, "q1", custom_networking=True)["settings"][
        "reservedENIs"] == "1"
