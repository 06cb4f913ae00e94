"""One way to declare a pinned Helm release: chart, version and repository from `versions`."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.versions import Chart


def pinned_release(
    resource_name: str, *, release_name: str, chart: Chart, namespace: str,
    opts: pulumi.ResourceOptions, **args: Any,
) -> k8s.helm.v3.Release:
    """A Helm release of `chart` at its pinned version, named `release_name` (a fixed name, not
    Pulumi's random suffix). An `oci://` chart has no repository. `args` go to the Release as
    they are (values, timeout, skip_crds, ...)."""
    if chart.repo:
        args["repository_opts"] = {"repo": chart.repo}
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name,
        chart=chart.chart,
        version=chart.version,
        namespace=namespace,
        opts=opts,
        **args,
    )
