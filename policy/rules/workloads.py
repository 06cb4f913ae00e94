"""Workloads: every image pinned, every container with CPU and memory requests.

Covers what the program declares as Kubernetes objects (Pods, Deployments, StatefulSets,
DaemonSets, Jobs, CronJobs, RayService/RayCluster/RayJob pod templates) and the image values it
passes to Helm releases. Objects a Helm chart renders are not resources CrossGuard sees: those are
checked by `checkov` only if rendered, and otherwise by pinning the chart version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from policy.core import Context, Policy, Resource, is_known, walk
from policy.pods import containers

HELM = "kubernetes:helm.sh/v3:Release"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None."""
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (means latest)"
    tag = last.rsplit(":", 1)[1]
    if tag in ("", "latest"):
        return f"uses tag {tag or '(empty)'!r}"
    return None


def images_pinned(r: Resource, ctx: Context) -> Iterable[str]:
    for where, c in containers(r):
        image = c.get("image")
        if not isinstance(image, str) or not is_known(image):
            if image is None:
                yield f"{where} has no image: set a pinned image"
            continue
        why = image_problem(image)
        if why:
            yield (f"{where} image {image!r} {why}: pin a version tag or a digest in "
                   f"infra/versions.py")
    if r.type == HELM:
        yield from _helm_images(r.props.get("values") or {})


def _helm_images(values: Mapping[str, Any]) -> Iterable[str]:
    """Image blocks in chart values ({repository, tag[, digest]}): an absent tag means the chart's
    own pinned appVersion, but an explicit "latest" floats."""
    for path, leaf in walk(values):
        if path.endswith(".tag") and isinstance(leaf, str) and leaf in ("latest", ""):
            yield f"Helm value {path} is {leaf!r}: pin a version (infra/versions.py)"
        if path.endswith("image") and isinstance(leaf, str) and is_known(leaf):
            why = image_problem(leaf)
            if why:
                yield f"Helm value {path} image {leaf!r} {why}: pin it"


def requests_set(r: Resource, ctx: Context) -> Iterable[str]:
    for where, c in containers(r):
        requests = (c.get("resources") or {}).get("requests") or {}
        missing = [k for k in ("cpu", "memory") if k not in requests]
        if missing:
            yield (f"{where} has no {' and no '.join(missing)} request: set resources.requests "
                   f"so the scheduler and Karpenter size nodes for it")


def memory_limit_set(r: Resource, ctx: Context) -> Iterable[str]:
    for where, c in containers(r):
        if "memory" not in ((c.get("resources") or {}).get("limits") or {}):
            yield f"{where} has no memory limit: one leak can evict its neighbours"


POLICIES = [
    Policy("image-pinned",
           "Every container image has a version tag (not latest) or a digest.",
           mandatory=True, check=images_pinned),
    Policy("container-requests", "Every container requests CPU and memory.",
           mandatory=True, check=requests_set),
    Policy("container-memory-limit", "Every container has a memory limit.",
           mandatory=False, check=memory_limit_set),
]
