"""Small builders of policy arguments (resources as the engine hands them over), for the rule
tests: each returns a GOOD object that the tests then break one field at a time."""

from __future__ import annotations

import copy
from typing import Any

from policy.core import Context, Resource

PROD = Context(stack="prod", environment="prod", region="us-west-2", cost_ceiling_per_hour=400.0)
DEV = Context(stack="dev", environment="dev", region="us-west-2", cost_ceiling_per_hour=25.0)

IMAGE = "rayproject/ray-llm:2.60.0-py312-cu130"
REQUESTS = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}


def res(type_: str, props: dict[str, Any], name: str = "r", urn: str | None = None,
        deps: dict[str, list[str]] | None = None) -> Resource:
    urn = urn or f"urn:pulumi:prod::p::{type_}::{name}"
    return Resource(type_, name, copy.deepcopy(props), urn, deps or {})


def k8s(kind: str, api: str, spec: dict[str, Any], name: str = "x", ns: str = "ray",
        **extra: Any) -> Resource:
    group, _, version = api.rpartition("/")
    token = f"kubernetes:{group + '/' if group else 'core/'}{version}:{kind}"
    props = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns},
             "spec": spec, **extra}
    return res(token, props, name)


def container(name: str = "main", image: str = IMAGE, **kw: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "resources": copy.deepcopy(REQUESTS), **kw}


def deployment(**container_kw: Any) -> Resource:
    return k8s("Deployment", "apps/v1",
               {"template": {"spec": {"containers": [container(**container_kw)]}}})


def rayservice(**spec_over: Any) -> Resource:
    head = {
        "rayStartParams": {"num-cpus": "0"},
        "template": {"spec": {"containers": [container("ray-head")],
                              "nodeSelector": {"llm-platform.io/node-class": "ray-head"}}},
    }
    worker = {
        "groupName": "g6e", "rayStartParams": {"resources": '"{\\"accelerator_type:L40S\\": 1}"'},
        "template": {"spec": {"containers": [container(
            "ray-worker", resources={"requests": {"cpu": "3", "memory": "24Gi",
                                                  "nvidia.com/gpu": "1"},
                                     "limits": {"nvidia.com/gpu": "1", "memory": "24Gi"}})],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                             "effect": "NoSchedule"}]}},
    }
    spec = {
        "upgradeStrategy": {"type": "NewCluster"},
        "serveConfigV2": "applications:\n- name: llm\n  import_path: serve_app.app:build\n"
                         "  runtime_env:\n    env_vars:\n      HF_HUB_OFFLINE: '1'\n",
        "rayClusterConfig": {"rayVersion": "2.60.0", "headGroupSpec": head,
                             "workerGroupSpecs": [worker]},
        **spec_over,
    }
    return k8s("RayService", "ray.io/v1", spec, name="llm")


def gpu_nodepool(limits: dict[str, Any] | None = None,
                 types: tuple[str, ...] = ("g6e.xlarge", "g6e.2xlarge")) -> Resource:
    spec = {
        "limits": {"nvidia.com/gpu": 4, "cpu": 32} if limits is None else limits,
        "template": {"spec": {
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In",
                 "values": list(types)},
                {"key": "karpenter.sh/capacity-type", "operator": "In",
                 "values": ["on-demand"]},
            ]}},
    }
    return k8s("NodePool", "karpenter.sh/v1", spec, name="g6e", ns="")


def nodeclass(**over: Any) -> Resource:
    spec = {
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required",
                            "httpPutResponseHopLimit": 1},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                 "ebs": {"volumeSize": "200Gi", "encrypted": True}}],
        **over,
    }
    return k8s("EC2NodeClass", "karpenter.k8s.aws/v1", spec, name="gpu", ns="")
