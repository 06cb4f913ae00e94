"""Dashboard 5, capacity and cost: GPU nodes, pending pods, Karpenter activity, GPU-hours, and
what the RAG database holds.

Karpenter 1.14 labels node series with the node's well-known labels (`nodepool`,
`capacity_type`, `instance_type`, `zone`, ...) and `resource_type` (`nvidia.com/gpu` as named on
the node); kube-state-metrics names that resource `nvidia_com_gpu`.
"""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER_VAR, MODEL, MODEL_VAR, ray, vllm
from dashboards.promql import (
    count_by,
    div,
    group_by,
    increase,
    max_by,
    mul,
    num,
    over_time,
    sel,
    sum_by,
)
from dashboards.spec import DashboardSpec, Kind, PanelSpec, Query, Variable

GPU_RESOURCE = {"resource_type": "nvidia.com/gpu"}  # Karpenter
KSM_GPU = {"resource": "nvidia_com_gpu"}  # kube-state-metrics
POOL_VAR = Variable("nodepool", "Node pool", sel(m.KARPENTER_NODEPOOL_LIMIT), "nodepool")
POOL = {"nodepool": "$nodepool"}
STEP_MIN = 5  # subquery step of the GPU-hours integral, minutes
STEP = f"{STEP_MIN}m"


def gpus_per_model():
    """GPUs requested by the pods that run each model's replicas, idle ones included (Ray series
    carry the pod's `namespace`/`pod` from the PodMonitor; serve_app/replica_metric.py)."""
    engines = group_by(vllm(m.MODEL_REPLICA), MODEL, "namespace", "pod")
    gpus = sum_by(sel(m.KSM_CONTAINER_REQUESTS, eq=KSM_GPU), "namespace", "pod")
    return sum_by(mul(engines, gpus, on=["namespace", "pod"], group_left=True), MODEL)


def rag_stored(metric: str):
    """A RAG store-size gauge over all tenants: every ingress replica reports each tenant's
    total (serve_app/rag/metrics.py), so max per tenant first, then the sum."""
    return sum_by(max_by(ray(metric), "tenant"))


# Aurora's own compute (ACUs) and storage bills are AWS's (CloudWatch), not scraped by this
# Prometheus; the panels show what the platform exports and point to the render's cost section.
AURORA_NOTE = ("Aurora's ACUs and bill are in CloudWatch/Cost Explorer, not in this Prometheus; "
               "each stack's ACU range and compute cost per hour are in `make render "
               "STACK=<stack>`'s summary.md (\"RAG database\").")


def spec() -> DashboardSpec:
    nodes = (
        PanelSpec(
            "GPU nodes by pool and capacity type",
            "Nodes with GPUs that Karpenter manages, per NodePool and on-demand/spot.",
            (Query(count_by(sel(m.KARPENTER_NODES_ALLOCATABLE, eq=GPU_RESOURCE, regex=POOL),
                            "nodepool", "capacity_type"), "{{nodepool}} {{capacity_type}}"),),
        ),
        PanelSpec(
            "GPUs by pool: in use vs limit",
            "GPUs provisioned per NodePool against the pool's `limits`; at the limit Karpenter "
            "launches nothing more and GPU pods pend.",
            (
                Query(sum_by(sel(m.KARPENTER_NODEPOOL_USAGE, eq=GPU_RESOURCE, regex=POOL),
                             "nodepool"), "used {{nodepool}}"),
                Query(sum_by(sel(m.KARPENTER_NODEPOOL_LIMIT, eq=GPU_RESOURCE, regex=POOL),
                             "nodepool"), "limit {{nodepool}}"),
            ),
        ),
        PanelSpec(
            "Pending pods and why",
            "Pods in phase Pending per namespace, how many the scheduler found unschedulable, "
            "and containers waiting by reason (image pulls, crash loops).",
            (
                Query(sum_by(sel(m.KSM_POD_PHASE, eq={"phase": "Pending"}), "namespace"),
                      "pending {{namespace}}"),
                Query(sum_by(sel(m.KSM_POD_UNSCHEDULABLE), "namespace"),
                      "unschedulable {{namespace}}"),
                Query(sum_by(sel(m.KSM_CONTAINER_WAITING), "reason"), "waiting: {{reason}}"),
            ),
        ),
    )
    activity = (
        PanelSpec(
            "Karpenter launches and disruptions",
            "NodeClaims created per pool, and disrupted per reason, in each interval.",
            (
                Query(sum_by(increase(sel(m.KARPENTER_NODECLAIMS_CREATED, regex=POOL),
                                      "$__rate_interval"), "nodepool"), "launched {{nodepool}}"),
                Query(sum_by(increase(sel(m.KARPENTER_NODECLAIMS_DISRUPTED, regex=POOL),
                                      "$__rate_interval"), "nodepool", "reason"),
                      "disrupted {{nodepool}} {{reason}}"),
            ),
        ),
        PanelSpec(
            "Interruption notices",
            "Messages Karpenter received from its interruption queue, by type "
            "(spot_interrupted, scheduled_change, instance_stopped, ...).",
            (Query(sum_by(increase(sel(m.KARPENTER_INTERRUPTIONS), "$__rate_interval"),
                          "message_type"), "{{message_type}}"),),
        ),
    )
    cost = (
        PanelSpec(
            "Cost rate by pool",
            "Karpenter's price estimate of each pool's nodes (USD per hour on AWS; not "
            "billing).",
            (Query(sum_by(sel(m.KARPENTER_NODEPOOL_COST, regex=POOL), "nodepool"),
                   "{{nodepool}}"),),
            unit="currencyUSD",
        ),
        PanelSpec(
            "GPUs held per model",
            "GPUs requested by the pods running each model's engines.",
            (Query(gpus_per_model(), f"{{{{{MODEL}}}}}"),),
        ),
        PanelSpec(
            "GPU-hours per model (time range)",
            "GPUs held per model integrated over the dashboard's time range (sampled every "
            f"{STEP}).",
            (Query(div(over_time("sum_over_time", gpus_per_model(), "$__range", STEP),
                       num(60 / STEP_MIN)), f"{{{{{MODEL}}}}}"),),
            kind=Kind.STAT,
        ),
    )
    database = (
        PanelSpec(
            "RAG database: file bytes stored",
            "Bytes of the files attached to vector stores, all tenants (the gateway's "
            f"store-size gauges). Storage is billed per GB-month on top of compute. {AURORA_NOTE}",
            (Query(rag_stored(m.RAG_STORE_BYTES), "file bytes"),),
            unit="bytes",
        ),
        PanelSpec(
            "RAG database: chunks stored",
            "Chunks (one embedding each) in the vector stores, all tenants: what the HNSW "
            "indexes hold, and what must fit in the instances' memory for fast searches "
            "(docs/rag-aws.md, \"Loading a million chunks\").",
            (Query(rag_stored(m.RAG_STORE_CHUNKS), "chunks"),),
        ),
    )
    return DashboardSpec(
        uid="capacity-cost",
        title="Capacity and cost",
        about="GPU nodes by pool and capacity type, pending pods, Karpenter launches and "
              "interruptions, cost and GPU-hours per model, and the RAG database's size.",
        variables=(POOL_VAR, CLUSTER_VAR, MODEL_VAR),
        rows=(("Nodes and pending pods", nodes), ("Karpenter activity", activity),
              ("Cost", cost), ("RAG database (Aurora)", database)),
    )
