"""Workload rules: pinned images and CPU/memory requests, in every kind of pod template."""

from __future__ import annotations

import pytest

from policy.core import Resource
from policy.rules import workloads
from tests.unit.policy.builders import PROD, container, deployment, k8s, rayservice, res


@pytest.mark.parametrize("image", [
    "nginx", "nginx:latest", "registry.example.com:5000/team/app", "ghcr.io/x/y:",
])
def test_unpinned_images_are_refused(image: str) -> None:
    (msg,) = workloads.images_pinned(deployment(image=image), PROD)
    assert repr(image) in msg and "pin" in msg


@pytest.mark.parametrize("image", [
    "nginx:1.27.3", "registry.example.com:5000/team/app:v2",
    "public.ecr.aws/karpenter/controller@sha256:" + "a" * 64,
])
def test_pinned_images_pass(image: str) -> None:
    assert list(workloads.images_pinned(deployment(image=image), PROD)) == []


def test_every_pod_template_kind_is_read() -> None:
    bad = container(image="busybox")
    for r in (
        k8s("Pod", "v1", {"containers": [bad]}),
        k8s("StatefulSet", "apps/v1", {"template": {"spec": {"initContainers": [bad]}}}),
        k8s("CronJob", "batch/v1",
            {"jobTemplate": {"spec": {"template": {"spec": {"containers": [bad]}}}}}),
    ):
        assert len(list(workloads.images_pinned(r, PROD))) == 1, r.type
    rs = rayservice()
    rs.props["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"][
        "containers"][0]["image"] = "rayproject/ray-llm:latest"
    (msg,) = workloads.images_pinned(rs, PROD)
    assert "workerGroupSpecs[0]" in msg


def test_helm_values_that_float_are_refused() -> None:
    rel = res(workloads.HELM, {"values": {"controller": {"image": {"repository": "x",
                                                                   "tag": "latest"}}}})
    (msg,) = workloads.images_pinned(rel, PROD)
    assert "controller.image.tag" in msg
    pinned = res(workloads.HELM, {"values": {"image": {"repository": "x", "tag": "v1.2.3"}}})
    assert list(workloads.images_pinned(pinned, PROD)) == []


def test_container_without_requests_is_refused_naming_what_is_missing() -> None:
    r = deployment(resources={"requests": {"cpu": "1"}})
    (msg,) = workloads.requests_set(r, PROD)
    assert "no memory request" in msg and "containers[name=main]" in msg
    none = deployment(resources={})
    assert "no cpu and no memory request" in next(iter(workloads.requests_set(none, PROD)))


def test_objects_without_pods_are_ignored() -> None:
    cm = Resource("kubernetes:core/v1:ConfigMap", "c", {"kind": "ConfigMap", "data": {}})
    assert list(workloads.requests_set(cm, PROD)) == []
