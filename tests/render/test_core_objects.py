"""Every core Kubernetes object of every stack (Services, Secrets, ConfigMaps, NetworkPolicies,
StatefulSets, PodDisruptionBudgets, Ingresses, StorageClasses, ...) validates against the
schemas of the stack's own Kubernetes version (`cluster.kubernetesVersion`), unknown fields
being errors. Custom resources are checked against their CRDs in test_render_harness."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from tests.support.k8s_schema import core_object_errors
from tools.render import STACKS, Rendered, _is_builtin_api


def kubernetes_version(r: Rendered) -> str:
    (eks,) = r.of_type("eks:index:Cluster")
    return str(eks.inputs["version"])


def core_objects(r: Rendered) -> list[dict]:
    return [o for o in r.kubernetes_objects() if _is_builtin_api(str(o.get("apiVersion", "")))]


@pytest.mark.parametrize("stack", STACKS)
def test_every_core_object_matches_the_kubernetes_schema(
    stack: str, rendered: Callable[[str], Rendered]
) -> None:
    r = rendered(stack)
    version = kubernetes_version(r)
    objs = core_objects(r)
    assert objs, "no core Kubernetes object rendered"
    problems = {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata'].get('name')}": errs
        for o in objs
        if (errs := core_object_errors(o, version))
    }
    assert not problems, json.dumps(problems, indent=2)


def test_a_misspelt_field_in_a_rendered_object_is_caught(
    rendered: Callable[[str], Rendered],
) -> None:
    r = rendered("prod")
    obj = copy.deepcopy(core_objects(r)[0])
    obj["spec" if "spec" in obj else "metadata"]["definitelyNotAField"] = 1
    assert core_object_errors(obj, kubernetes_version(r))


def test_a_masked_secret_stands_for_any_type_but_its_neighbours_are_checked() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "stringData": "[secret]"}
    assert core_object_errors(secret, "1.34") == []
    assert core_object_errors({**secret, "stringDta": {}}, "1.34")
    assert core_object_errors({**secret, "stringData": "not masked"}, "1.34")
