"""Bad AWS config fails before any resource is declared, naming the key path."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, validate
from tools.render import render_stack

SERVING = {"models": [{"id": "m", "source": "org/m", "accelerator": {"gpusPerReplica": 1}}]}
POOL_OK = {"name": "g6e", "family": "g6e", "limits": {"gpus": 4}}


def problems(**values: Any) -> str:
    with pytest.raises(ConfigError) as exc:
        validate({"environment": "dev", "serving": SERVING, **values})
    return str(exc.value)


def test_gpu_family_not_in_catalog() -> None:
    text = problems(gpuNodePools=[POOL_OK, {"name": "x", "family": "g7x", "limits": {"gpus": 1}}])
    assert "llm-platform:gpuNodePools[1].family: unknown GPU family 'g7x'" in text
    assert "g5, g6e, p4d" in text


def test_size_not_in_catalog() -> None:
    text = problems(gpuNodePools=[{**POOL_OK, "sizes": ["xlarge", "3xlarge"]}])
    assert "llm-platform:gpuNodePools[0]" in text and "3xlarge" in text


def test_pool_without_limits() -> None:
    text = problems(gpuNodePools=[POOL_OK, {"name": "g5", "family": "g5"}])
    assert "llm-platform:gpuNodePools[1].limits: required key is missing" in text


def test_pool_with_limits_but_no_gpu_limit() -> None:
    text = problems(gpuNodePools=[{**POOL_OK, "limits": {"cpu": 64}}])
    assert "llm-platform:gpuNodePools[0].limits.gpus: required key is missing" in text


@pytest.mark.parametrize("count", [1, 7])
def test_az_count_out_of_range(count: int) -> None:
    assert "llm-platform:network.azCount" in problems(network={"azCount": count})


def test_overlapping_cidrs() -> None:
    text = problems(network={"vpcCidr": "10.0.0.0/16", "podCidr": "10.0.0.0/17"})
    assert "llm-platform:network" in text and "overlaps" in text


def test_ami_version_of_the_wrong_family() -> None:
    text = problems(karpenter={"gpuAmiFamily": "bottlerocket-nvidia", "gpuAmiVersion": "v20251108"})
    assert "llm-platform:karpenter" in text and "not a Bottlerocket release" in text


def test_private_endpoint_without_api_access_names_the_key() -> None:
    text = problems(cluster={"endpointAccess": "private"})
    assert "set llm-platform:cluster.apiAccessCidrs" in text
    assert "apiAccessCidrs" not in problems(
        cluster={"endpointAccess": "private", "apiAccessSecurityGroupIds": ["sg-0123abcd"]},
        network={"azCount": 1},
    )


def test_kube_proxy_pin_must_follow_kubernetes_version() -> None:
    text = problems(cluster={"kubernetesVersion": "1.35"})
    assert "llm-platform:cluster" in text and "kubeProxy" in text


def test_render_stops_before_declaring_resources() -> None:
    bad_pools = [{"name": "g6e", "family": "g6e"}]
    with pytest.raises(ConfigError) as exc:
        render_stack("dev", overrides={"gpuNodePools": bad_pools, "network": {"azCount": 8}})
    text = str(exc.value)
    assert "llm-platform:gpuNodePools[0].limits" in text
    assert "llm-platform:network.azCount" in text
