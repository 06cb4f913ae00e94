"""The timeouts along the request path, read back from the render and checked against each
other (infra/serving/timeouts.py says why each relation holds): the ALB idle timeout and
deregistration delay (Ingress annotations), Ray Serve's keep-alive (serveConfigV2) and KubeRay's
rayClusterDeletionDelaySeconds (absent: KubeRay's default, 60 s)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from infra.serving.exposure import ALB
from infra.serving.timeouts import CONTROLLER_REACTION_S, ConnectionTimeouts, problems
from tests.render.test_edge_render import INGRESS, RAYSERVICE, one, with_alb
from tools.render import STACKS, Rendered

Render = Callable[[str], Rendered]
# Defaults when a field is left out: KubeRay v1.7.0 apis/ray/v1/rayservice_types.go (60 s) and
# ray serve/_private/constants.py DEFAULT_UVICORN_KEEP_ALIVE_TIMEOUT_S (90 s).
KUBERAY_DELETION_DELAY_DEFAULT = 60
SERVE_KEEP_ALIVE_DEFAULT = 90


def _attributes(text: str) -> dict[str, int]:
    pairs = (kv.split("=", 1) for kv in text.split(","))
    return {k: int(v) for k, v in pairs if v.isdigit()}


def rendered_timeouts(r: Rendered) -> ConnectionTimeouts:
    annotations = one(r, INGRESS).inputs["metadata"]["annotations"]
    lb = _attributes(annotations[f"{ALB}/load-balancer-attributes"])
    tg = _attributes(annotations[f"{ALB}/target-group-attributes"])
    spec = one(r, RAYSERVICE).inputs["spec"]
    http = yaml.safe_load(spec["serveConfigV2"]).get("http_options", {})
    return ConnectionTimeouts(
        alb_idle_s=lb["idle_timeout.timeout_seconds"],
        serve_keep_alive_s=http.get("keep_alive_timeout_s", SERVE_KEEP_ALIVE_DEFAULT),
        deregistration_delay_s=tg["deregistration_delay.timeout_seconds"],
        cluster_deletion_delay_s=spec.get("rayClusterDeletionDelaySeconds",
                                          KUBERAY_DELETION_DELAY_DEFAULT),
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_timeouts_keep_their_relations(stack: str) -> None:
    t = rendered_timeouts(with_alb(stack))
    assert problems(t) == []
    assert t.deregistration_delay_s == min(t.alb_idle_s, 3600)  # streams get the idle timeout


@pytest.mark.parametrize("stack", STACKS)
def test_without_the_alb_the_ray_side_is_the_same(stack: str, rendered: Render) -> None:
    """The Ray-side values do not depend on the ALB being on (in-cluster clients and a later
    ALB find them already right), so switching it on never starts a new Ray cluster."""
    plain, alb = one(rendered(stack), RAYSERVICE).inputs, one(with_alb(stack), RAYSERVICE).inputs
    assert plain["spec"]["rayClusterDeletionDelaySeconds"] == \
        alb["spec"]["rayClusterDeletionDelaySeconds"]
    assert plain["spec"]["serveConfigV2"] == alb["spec"]["serveConfigV2"]


def test_the_relations_catch_each_broken_timeout() -> None:
    good = ConnectionTimeouts(600, 605, 600, 600 + CONTROLLER_REACTION_S)
    assert problems(good) == []
    for broken in (
        ConnectionTimeouts(600, SERVE_KEEP_ALIVE_DEFAULT, 600, 660),
        ConnectionTimeouts(600, 605, 600, KUBERAY_DELETION_DELAY_DEFAULT),
        ConnectionTimeouts(4000, 4005, 4000, 4060),
    ):
        assert problems(broken), broken
