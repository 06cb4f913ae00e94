"""Karpenter rules: GPU NodePool limits, EC2NodeClass hardening, the GPU cost ceiling."""

from __future__ import annotations

from dataclasses import replace

from policy.offline import run
from policy.rules import karpenter
from tests.unit.policy.builders import DEV, PROD, gpu_nodepool, k8s, nodeclass


def test_gpu_nodepool_with_gpu_and_cpu_limits_passes() -> None:
    assert list(karpenter.gpu_nodepool_limits(gpu_nodepool(), PROD)) == []


def test_gpu_nodepool_without_cpu_limit_is_refused_naming_the_config_key() -> None:
    (msg,) = karpenter.gpu_nodepool_limits(gpu_nodepool({"nvidia.com/gpu": 4}), PROD)
    assert "'cpu'" in msg and "gpuNodePools[].limits.cpu" in msg


def test_gpu_nodepool_without_any_limit_is_refused_twice() -> None:
    assert len(list(karpenter.gpu_nodepool_limits(gpu_nodepool({}), PROD))) == 2


def test_cpu_pool_is_not_a_gpu_pool_but_an_unrestricted_pool_is() -> None:
    cpu_only = k8s("NodePool", "karpenter.sh/v1", {"limits": {"cpu": 64}, "template": {"spec": {
        "requirements": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                          "values": ["m7i", "m6i"]}]}}}, ns="")
    assert list(karpenter.gpu_nodepool_limits(cpu_only, PROD)) == []
    anything = k8s("NodePool", "karpenter.sh/v1", {"limits": {"cpu": 64},
                                                   "template": {"spec": {}}}, ns="")
    assert karpenter.may_launch_gpus(anything)
    assert len(list(karpenter.gpu_nodepool_limits(anything, PROD))) == 1  # no GPU limit


def test_nodeclass_needs_imdsv2_and_encrypted_volumes() -> None:
    assert list(karpenter.nodeclass_hardened(nodeclass(), PROD)) == []
    bad = nodeclass(metadataOptions={"httpTokens": "optional"},
                    blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"encrypted": False}}])
    found = list(karpenter.nodeclass_hardened(bad, PROD))
    assert len(found) == 2 and "IMDSv2" in found[0] and "encrypted" in found[1]
    assert "blockDeviceMappings" in next(iter(karpenter.nodeclass_hardened(
        nodeclass(blockDeviceMappings=[]), PROD)))


def test_cost_ceiling_passes_under_and_fails_over_with_the_numbers() -> None:
    pool = gpu_nodepool({"nvidia.com/gpu": 4, "cpu": 64})  # 4 x g6e.2xlarge = 8.97 USD/h
    assert run([pool], PROD, karpenter.POLICIES) == []
    (v,) = run([pool], replace(PROD, cost_ceiling_per_hour=5.0), karpenter.POLICIES)
    assert v.policy == "gpu-cost-ceiling" and v.mandatory
    assert "8.97 USD/h" in v.message and "costCeilingPerHour 5 USD/h" in v.message
    assert "4 x g6e.2xlarge" in v.message


def test_cost_ceiling_refuses_an_unpriced_region_and_an_unknown_instance_type() -> None:
    (v,) = run([gpu_nodepool()], replace(PROD, region="eu-north-1"), karpenter.POLICIES)
    assert "aws:region" in v.message and "eu-north-1" in v.message
    odd = gpu_nodepool(types=("g6e.xlarge", "g7.xlarge"))
    (v,) = run([odd], PROD, [p for p in karpenter.POLICIES if p.name == "gpu-cost-ceiling"])
    assert "['g7.xlarge']" in v.message and "infra/capacity/catalog.py" in v.message


def test_spot_gpus_only_advised_in_prod() -> None:
    spot = gpu_nodepool()
    spot.props["spec"]["template"]["spec"]["requirements"][1]["values"] = ["spot", "on-demand"]
    (msg,) = karpenter.spot_gpus_in_prod(spot, PROD)
    assert "on-demand" in msg
    assert list(karpenter.spot_gpus_in_prod(spot, DEV)) == []
