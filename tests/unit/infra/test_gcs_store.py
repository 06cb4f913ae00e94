"""infra/serving/gcs_store.py: the RayService's gcsFaultToleranceOptions against KubeRay's CRD, and
the dev Redis objects against the Kubernetes schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from infra.config.cluster import ClusterConfig
from infra.config.gcs_fault_tolerance import InClusterRedisConfig
from infra.serving.gcs_store import (
    PASSWORD_KEY,
    PASSWORD_SECRET,
    fault_tolerance_options,
    in_cluster_address,
    ray_disruption_budgets,
    redis_pdb,
    redis_service,
    redis_statefulset,
    replication_group_id,
)
from infra.versions import REDIS_IMAGE
from tests.support.crds import validate_custom_resource

# The schemas of the Kubernetes version the stacks run.
KUBERNETES = f"{ClusterConfig().kubernetes_version}.0"


def _rayservice_with(options: dict[str, Any]) -> dict[str, Any]:
    head = {"rayStartParams": {}, "template": {"spec": {"containers": [
        {"name": "ray-head", "image": "rayproject/ray-llm:2.60.0-py312-cu130"}]}}}
    return {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "llm"},
            "spec": {"rayClusterConfig": {"headGroupSpec": head,
                                          "gcsFaultToleranceOptions": options}}}


@pytest.mark.parametrize("address", ["rediss://master.x.cache.amazonaws.com:6379",
                                     in_cluster_address("serving")])
def test_options_validate_against_the_kuberay_crd(address: str) -> None:
    options = fault_tolerance_options(address)
    assert validate_custom_resource(_rayservice_with(options)) == []
    assert options["redisAddress"] == address
    # The password only by reference: the CR (and the render) never holds it.
    assert options["redisPassword"] == {"valueFrom": {"secretKeyRef": {
        "name": PASSWORD_SECRET, "key": PASSWORD_KEY}}}


def test_crd_check_would_catch_a_misspelt_option() -> None:
    bad = dict(fault_tolerance_options("redis://r:6379"), redisPasword="x")
    assert validate_custom_resource(_rayservice_with(bad))


@pytest.mark.parametrize("build", [
    lambda: redis_statefulset("serving", InClusterRedisConfig()),
    lambda: redis_service("serving"),
    lambda: redis_pdb("serving"),
])
def test_dev_redis_objects_validate_against_kubernetes(build) -> None:
    kubernetes_validate.validate(build(), KUBERNETES, strict=True)


def test_dev_redis_is_pinned_persistent_and_password_protected() -> None:
    sts = redis_statefulset("serving", InClusterRedisConfig(storage_gib=20))
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    assert c["image"] == REDIS_IMAGE.ref and REDIS_IMAGE.tag not in ("", "latest")
    assert c["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert "--appendonly" in c["args"]
    (env,) = c["env"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": PASSWORD_SECRET, "key": PASSWORD_KEY}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "gp3"
    # The PDB selects exactly the Redis pods and keeps the healthy one from being evicted.
    pdb = redis_pdb("serving")["spec"]
    assert pdb["selector"]["matchLabels"] == sts["spec"]["template"]["metadata"]["labels"]
    assert pdb["minAvailable"] == 1 and pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_replication_group_id_is_checked_against_the_elasticache_limit() -> None:
    assert replication_group_id("llm-platform-prod") == "llm-platform-prod-gcs"
    with pytest.raises(ValueError, match="longer than 40"):
        replication_group_id("llm-platform-" + "x" * 30)


def test_ray_pdbs_keep_the_head_and_most_gateway_workers_through_drains() -> None:
    head, ingress = ray_disruption_budgets("serving", "ingress")
    for pdb in (head, ingress):
        kubernetes_validate.validate(pdb, KUBERNETES, strict=True)
    assert head["spec"]["selector"]["matchLabels"] == {"ray.io/node-type": "head"}
    assert head["spec"]["minAvailable"] == 1
    assert ingress["spec"]["selector"]["matchLabels"] == {"ray.io/node-type": "worker",
                                                          "ray.io/group": "ingress"}
    assert ingress["spec"]["maxUnavailable"] == 1
