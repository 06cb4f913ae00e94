"""Every component of the program: type token by concern, outputs declared and registered,
and an alias wherever a type token changed (so that an existing stack replaces nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from infra.component import declared_outputs
from infra.foundation.cluster import Cluster
from infra.foundation.karpenter import Karpenter
from infra.foundation.network import Network
from infra.platform.gpu import GpuEnablement
from infra.platform.kuberay import KubeRay
from infra.platform.monitoring import Monitoring
from infra.serving.api_keys import ApiKeys
from infra.serving.exposure import Exposure
from infra.serving.gcs_store import GcsRedis
from infra.serving.model_store import ModelStore
from infra.serving.network_policy import RayNetworkPolicies
from infra.serving.rayservice import RayService
from tools.render import STACKS, Rendered

COMPONENTS = [
    Network, Cluster, Karpenter, GpuEnablement, Monitoring, KubeRay, RayService, ModelStore,
    GcsRedis, ApiKeys, RayNetworkPolicies, Exposure,
]
# Type tokens that were renamed, new -> old: each must carry an alias to the old one.
RENAMED = {"llm-platform:k8s:GpuEnablement": "llm-platform:aws:GpuEnablement"}


@pytest.mark.parametrize("stack", STACKS)
def test_component_type_tokens_say_aws_or_k8s(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    ours = [r for r in rendered(stack).resources if r.type.startswith("llm-platform:")]
    assert ours, "no component rendered"
    for r in ours:
        assert re.fullmatch(r"llm-platform:(aws|k8s):[A-Z][A-Za-z]+", r.type), r.type


@pytest.mark.parametrize("stack", STACKS)
def test_renamed_type_tokens_alias_the_old_one(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    for new, old in RENAMED.items():
        found = rendered(stack).of_type(new)
        assert found, f"no {new} in the render"
        for r in found:
            assert {"type": old} in r.aliases, (r.name, r.aliases)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_every_component_declares_its_outputs(component: type) -> None:
    # Registering happens in the render: an output declared but never assigned fails it.
    assert declared_outputs(component), f"{component.__name__} declares no outputs"
