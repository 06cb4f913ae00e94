"""RayService rules: explicit upgrade strategy, GPU-free head, no deprecated fields."""

from __future__ import annotations

from policy.offline import run
from policy.rules import rayservice
from tests.unit.policy.builders import PROD
from tests.unit.policy.builders import rayservice as make


def test_a_well_formed_rayservice_passes_every_rayservice_policy() -> None:
    assert run([make()], PROD, rayservice.POLICIES) == []


def test_missing_or_invalid_upgrade_strategy_is_refused() -> None:
    for spec in ({}, {"type": "Recreate"}):
        (msg,) = rayservice.upgrade_strategy(make(upgradeStrategy=spec), PROD)
        assert "spec.upgradeStrategy.type" in msg and "NewCluster" in msg
    rs = make()
    del rs.props["spec"]["upgradeStrategy"]
    assert len(list(rayservice.upgrade_strategy(rs, PROD))) == 1


def test_head_with_a_gpu_is_refused_wherever_it_asks() -> None:
    rs = make()
    head = rs.props["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["rayStartParams"]["num-gpus"] = "1"
    head["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    found = list(rayservice.head_without_gpu(rs, PROD))
    assert len(found) == 2 and "num-gpus" in found[0] and "resources.limits" in found[1]


def test_deprecated_threshold_fields_are_refused() -> None:
    rs = make(serviceUnhealthySecondThreshold=900)
    (msg,) = rayservice.no_deprecated(rs, PROD)
    assert "serviceUnhealthySecondThreshold" in msg and "remove it" in msg


def test_head_that_could_run_replicas_or_sit_on_gpu_nodes_is_advised() -> None:
    rs = make()
    head = rs.props["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["rayStartParams"] = {}
    head["template"]["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    found = run([rs], PROD, rayservice.POLICIES)
    assert {v.policy for v in found} == {"rayservice-head-num-cpus-zero",
                                         "rayservice-head-off-gpu-nodes"}
    assert not any(v.mandatory for v in found)
