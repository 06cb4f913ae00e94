"""Connection timeouts along the request path, all derived from one setting.

The setting is the ALB idle timeout (`exposure.alb.idleTimeoutS`): how long a connection may
carry no bytes (a non-streamed completion sends nothing until it is done). The others follow:

- Ray Serve's proxy keep-alive (`http_options.keep_alive_timeout_s`, default
  `DEFAULT_UVICORN_KEEP_ALIVE_TIMEOUT_S` = 90 s, ray serve/_private/constants.py; applied by
  serve/_private/http_util.py as uvicorn's `timeout_keep_alive`): longer than the ALB's idle
  timeout. AWS's ALB docs ("Connection idle timeout"): the target's keep-alive must exceed the
  load balancer's idle timeout, else the target closes a connection the ALB is about to reuse and
  the client gets a 502.
- The target group's deregistration delay: a pod leaving the target group (a switch to a new Ray
  cluster, a scale-down) keeps its in-flight requests this long; the same as the idle timeout,
  at most 3600 s (the ALB's limit).
- `rayClusterDeletionDelaySeconds`: after a NewCluster upgrade switches traffic, KubeRay deletes
  the old cluster after this delay, default 60 s (kuberay v1.7.0 rayservice_controller.go,
  apis/ray/v1/rayservice_types.go). The old pods must outlive the deregistration delay plus the
  Load Balancer Controller's reaction to the endpoint change, or streams are cut mid-way.

`problems()` states the relations; the render tests check them on every rendered stack.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds Serve keeps an idle connection open beyond the ALB's idle timeout.
KEEP_ALIVE_MARGIN_S = 5
# Time the Load Balancer Controller may take to see the serve Service's endpoints change and
# start deregistering the old targets (its reconcile of the TargetGroupBinding).
CONTROLLER_REACTION_S = 60
ALB_MAX_DEREGISTRATION_S = 3600


@dataclass(frozen=True)
class ConnectionTimeouts:
    """Seconds, each named after the field it is written to."""

    alb_idle_s: int
    serve_keep_alive_s: int
    deregistration_delay_s: int
    cluster_deletion_delay_s: int


def connection_timeouts(alb_idle_s: int) -> ConnectionTimeouts:
    """Every timeout from the ALB idle timeout (the module docstring says why each)."""
    deregistration = min(alb_idle_s, ALB_MAX_DEREGISTRATION_S)
    return ConnectionTimeouts(
        alb_idle_s=alb_idle_s,
        serve_keep_alive_s=alb_idle_s + KEEP_ALIVE_MARGIN_S,
        deregistration_delay_s=deregistration,
        cluster_deletion_delay_s=deregistration + CONTROLLER_REACTION_S,
    )


def problems(t: ConnectionTimeouts) -> list[str]:
    """The relations the timeouts must keep, as messages naming the fields; empty when kept."""
    out = []
    if t.serve_keep_alive_s <= t.alb_idle_s:
        out.append(f"Serve keep_alive_timeout_s {t.serve_keep_alive_s} must exceed the ALB idle"
                   f" timeout {t.alb_idle_s} (else 502s on reused connections)")
    if t.deregistration_delay_s > ALB_MAX_DEREGISTRATION_S:
        out.append(f"deregistration delay {t.deregistration_delay_s} exceeds the ALB's"
                   f" {ALB_MAX_DEREGISTRATION_S}")
    if t.cluster_deletion_delay_s < t.deregistration_delay_s + CONTROLLER_REACTION_S:
        out.append(f"rayClusterDeletionDelaySeconds {t.cluster_deletion_delay_s} must cover the"
                   f" deregistration delay {t.deregistration_delay_s} plus"
                   f" {CONTROLLER_REACTION_S} s for the controller (else upgrades cut streams)")
    return out
