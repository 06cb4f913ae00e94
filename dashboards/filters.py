"""The label filters every dashboard applies, from its template variables.

`ray_io_cluster` is the RayCluster a series comes from: Ray does not emit it, the Ray PodMonitor
copies it from the pod label `ray.io/cluster` (two clusters coexist while a RayService
upgrades). `model_name` is vLLM's label for the served model id. Multi-value variables whose
"All" is `.*` are matched with `=~`, so "All" also keeps series without the label.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards import metrics as m
from dashboards.promql import sel
from dashboards.spec import Variable

CLUSTER = "ray_io_cluster"
MODEL = "model_name"

CLUSTER_VAR = Variable("cluster", "Ray cluster", sel(m.SERVE_REPLICA_HEALTHY), CLUSTER)
MODEL_VAR = Variable(
    "model", "Model", sel(m.MODEL_REPLICA, regex={CLUSTER: "$cluster"}), MODEL
)


def ray(metric: str, eq: Mapping[str, str] | None = None, **regex: str):
    """A Ray/Serve series of the selected cluster(s)."""
    return sel(metric, eq, {CLUSTER: "$cluster", **regex})


def vllm(metric: str, eq: Mapping[str, str] | None = None, **regex: str):
    """A vLLM series of the selected cluster(s) and model(s)."""
    return sel(metric, eq, {CLUSTER: "$cluster", MODEL: "$model", **regex})


def vllm_filter() -> dict[str, str]:
    return {CLUSTER: "$cluster", MODEL: "$model"}
