"""PrometheusRule groups (`spec.groups`) for the platform's alerts, generated from code.

`rule_groups(thresholds)` returns plain data; infra/platform/monitoring.py puts it in a
PrometheusRule.
Every alert has `labels.severity`, `annotations.summary/description` and a `runbook_url` that
points at a section of docs/runbooks.md (tests check the anchor exists and that each alert has
a firing and a not-firing `promtool test rules` case in tests/unit/dashboards/alerts_test.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from dashboards import metrics as m
from dashboards.promql import (
    Expr,
    add,
    and_,
    count_by,
    div,
    eq,
    func,
    group_by,
    gt,
    gte,
    increase,
    label_copy,
    label_set,
    max_by,
    metric_names,
    mul,
    num,
    or_,
    quantile,
    rate,
    ratio,
    sel,
    sum_by,
    unless,
    zero_if_absent,
)

RUNBOOK_DOC = "docs/runbooks.md"
# A Prometheus duration as rules and PrometheusRule `for` take it: "30s", "5m", "1h".
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+(ms|s|m|h|d|w|y)$")]


class AlertThresholds(BaseModel):
    """Alert thresholds; defaults suit the prod profile (infra may feed config values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_p95_slo_s: float = Field(
        1.0, gt=0, description="SLO for time to first token, p95, in seconds (per model); one "
        "of vLLM's TTFT histogram buckets, so the attainment panel can count requests under it."
    )
    ttft_window: Duration = Field("5m", description="Window of the TTFT p95 (Prometheus duration).")
    ttft_for: Duration = Field("10m", description="How long p95 TTFT must exceed the SLO to page.")
    queue_waiting_requests: float = Field(
        10, gt=0, description="Requests waiting in one model's vLLM engines (sum) for a queue "
        "build-up alert, in requests."
    )
    queue_for: Duration = Field("5m", description="How long the queue must stay above the bound.")
    kv_cache_usage_ratio: float = Field(
        0.95, gt=0, le=1, description="KV-cache usage of one engine (fraction 0..1) that counts "
        "as saturated."
    )
    kv_cache_for: Duration = Field("10m", description="How long the KV cache must stay saturated.")
    error_ratio: float = Field(
        0.05, gt=0, le=1, description="Share of HTTP requests answered 5xx (fraction 0..1), per "
        "Serve application."
    )
    error_window: Duration = Field("5m", description="Window of the error ratio.")
    error_for: Duration = Field("5m", description="How long the error ratio must stay high.")
    llm_deployment_regex: str = Field(
        ".*LLMServer:.*", description="Regex of the Serve deployments that serve a model "
        "(Ray Serve LLM names them `<ServerClass>:<model id>`)."
    )
    no_replica_for: Duration = Field(
        "5m", description="How long a model may have no healthy replica."
    )
    rayservice_not_ready_for: Duration = Field(
        "10m", description="How long a RayService may report Ready=false."
    )
    rayservice_upgrade_for: Duration = Field(
        "30m", description="How long a RayService may stay UpgradeInProgress=true."
    )
    head_pod_regex: str = Field(
        ".+-head-.+", description="Regex of Ray head pod names (KubeRay: `<cluster>-head-<id>`)."
    )
    head_memory_ratio: float = Field(
        0.9, gt=0, le=1, description="Head node memory used / total (fraction 0..1) to warn at."
    )
    gpu_temp_celsius: float = Field(
        85, gt=0, description="GPU core temperature to warn at, in °C."
    )
    gpu_temp_for: Duration = Field("5m", description="How long the GPU must stay above the bound.")
    spot_interruptions: float = Field(
        1, gt=0, description="Spot interruption notices in `spot_window` to warn at, in notices."
    )
    spot_window: Duration = Field("30m", description="Window counted for spot interruptions.")
    pending_for: Duration = Field(
        "10m", description="How long GPU pods must pend while a GPU pool is at its limit."
    )
    scrape_jobs: dict[str, str] = Field(
        default_factory=lambda: {
            "ray": "(.+/)?ray(-.*)?",  # PodMonitor jobs are <namespace>/<name>
            "kuberay-operator": ".*kuberay.*",
            "dcgm-exporter": ".*dcgm.*",
            "karpenter": ".*karpenter.*",
            "kube-state-metrics": ".*kube-state-metrics.*",
        },
        description="Component name -> regex of its Prometheus `job` label; each must have "
        "targets (absent) that are up (down).",
    )
    scrape_down_for: Duration = Field("5m", description="How long a target may be down.")
    scrape_absent_for: Duration = Field(
        "10m", description="How long a component may have no target."
    )
    rag_db_errors_for: Duration = Field(
        "5m", description="How long the gateway may keep failing to reach the RAG database "
        "(every search, upload and pipeline call a 503) before it pages."
    )
    rag_migration_pod_regex: str = Field(
        "rag-migrate-.*", description="Regex of the RAG schema migration Job's pods "
        "(infra/serving/vector_db.py names the Jobs rag-migrate-<hash>)."
    )
    tenant_budget_ratio: float = Field(
        0.9, gt=0, le=1, description="Share of a key's monthly token budget (monthlyTokens) "
        "used (fraction 0..1) to warn at."
    )
    tenant_budget_for: Duration = Field(
        "10m", description="How long a key must stay above the budget share (reservations are "
        "counted before they settle, so a burst of large requests can pass it for moments)."
    )
    tenant_no_redis_for: Duration = Field(
        "2m", description="How long the gateway may keep deciding requests of limited keys "
        "without Redis (limits not counted, or requests refused) before it pages."
    )
    cost_window: Duration = Field(
        "1h", description="Window of the USD per 1M tokens recording rules: GPU cost and tokens "
        "served are both averaged over it."
    )
    runbook_base_url: str = Field(
        RUNBOOK_DOC, description="URL of docs/runbooks.md as operators read it (e.g. on the "
        "repository host); each alert links `<url>#<section>`."
    )


    @field_validator("ttft_p95_slo_s")
    @classmethod
    def _ttft_is_a_bucket(cls, v: float) -> float:
        if v not in m.TTFT_BUCKETS_S:
            raise ValueError(f"{v}s is not a bucket boundary of {m.VLLM_TTFT}; "
                             f"choose one of {', '.join(f'{b:g}' for b in m.TTFT_BUCKETS_S)}")
        return v


@dataclass(frozen=True)
class Alert:
    name: str
    expr: Expr
    severity: str
    for_: str
    summary: str
    description: str
    runbook: str  # section anchor in docs/runbooks.md

    @property
    def metrics(self) -> set[str]:
        return metric_names(self.expr)

    def to_rule(self, t: AlertThresholds) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": str(self.expr),
            "for": self.for_,
            "labels": {"severity": self.severity},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{t.runbook_base_url}#{self.runbook}",
            },
        }


def _serving(t: AlertThresholds) -> list[Alert]:
    llm = {"deployment": t.llm_deployment_regex}
    healthy = sel(m.SERVE_REPLICA_HEALTHY, regex=llm)
    seen_lately = count_by(
        func("max_over_time", sel(m.SERVE_REPLICA_HEALTHY, regex=llm).range("1h")),
        "ray_io_cluster", "application", "deployment",
    )
    healthy_now = count_by(
        gte(healthy, num(1)), "ray_io_cluster", "application", "deployment"
    )
    http = sel(m.SERVE_HTTP_REQUESTS)
    http_5xx = sel(m.SERVE_HTTP_REQUESTS, regex={"status_code": "5.."})
    by_app = ("ray_io_cluster", "application")
    return [
        Alert(
            "LLMTimeToFirstTokenAboveSLO",
            gt(quantile(0.95, m.VLLM_TTFT + "_bucket", by=["ray_io_cluster", "model_name"],
                        window=t.ttft_window), num(t.ttft_p95_slo_s)),
            "critical", t.ttft_for,
            "{{ $labels.model_name }}: p95 time to first token above the SLO",
            f"p95 TTFT of {{{{ $labels.model_name }}}} is {{{{ $value | humanizeDuration }}}} "
            f"over {t.ttft_window} (SLO {t.ttft_p95_slo_s:g}s).",
            "ttft-above-slo",
        ),
        Alert(
            "LLMQueueBuildUp",
            gt(sum_by(sel(m.VLLM_WAITING), "ray_io_cluster", "model_name"),
               num(t.queue_waiting_requests)),
            "warning", t.queue_for,
            "{{ $labels.model_name }}: requests are queueing in the engines",
            f"{{{{ $value }}}} requests of {{{{ $labels.model_name }}}} wait for an engine slot "
            f"(bound {t.queue_waiting_requests:g}).",
            "queue-build-up",
        ),
        Alert(
            "LLMKVCacheSaturated",
            gt(max_by(sel(m.VLLM_KV_CACHE_USAGE), "ray_io_cluster", "model_name", "ReplicaId"),
               num(t.kv_cache_usage_ratio)),
            "warning", t.kv_cache_for,
            "{{ $labels.model_name }}: KV cache of replica {{ $labels.ReplicaId }} is full",
            f"KV-cache usage is {{{{ $value | humanizePercentage }}}} "
            f"(bound {t.kv_cache_usage_ratio:.0%}); requests get preempted or wait.",
            "kv-cache-saturated",
        ),
        Alert(
            "LLMHighErrorRatio",
            gt(ratio(sum_by(rate(http_5xx, t.error_window), *by_app),
                     sum_by(rate(http, t.error_window), *by_app)), num(t.error_ratio)),
            "critical", t.error_for,
            "{{ $labels.application }}: too many requests fail with 5xx",
            f"{{{{ $value | humanizePercentage }}}} of HTTP requests to "
            f"{{{{ $labels.application }}}} answered 5xx over {t.error_window} "
            f"(bound {t.error_ratio:.0%}).",
            "error-ratio",
        ),
        Alert(
            "LLMModelNoHealthyReplica",
            unless(seen_lately, healthy_now, on=["ray_io_cluster", "application", "deployment"]),
            "critical", t.no_replica_for,
            "{{ $labels.deployment }}: no healthy replica",
            "Serve deployment {{ $labels.deployment }} had replicas in the last hour and has no "
            "healthy one now: its model cannot answer.",
            "model-without-healthy-replica",
        ),
        Alert(
            "LLMCanaryRolledBack",
            gt(max_by(sel(m.GATEWAY_ALIAS_ROLLED_BACK), "ray_io_cluster", "alias", "target"),
               num(0)),
            "warning", "0m",
            "{{ $labels.alias }}: canary {{ $labels.target }} was rolled back",
            "The gateway sends the share of canary {{ $labels.target }} of alias "
            "{{ $labels.alias }} to the alias's stable target: its error ratio broke the "
            "alias's rollback rule. It stays out until a deploy changes the alias.",
            "canary-rolled-back",
        ),
    ]


def _rayservice(t: AlertThresholds) -> list[Alert]:
    restarts = sel(m.KSM_CONTAINER_RESTARTS, regex={"pod": t.head_pod_regex})
    head_used = sel(m.RAY_NODE_MEM_USED, eq={"RayNodeType": "head"})
    head_total = sel(m.RAY_NODE_MEM_TOTAL, eq={"RayNodeType": "head"})
    return [
        Alert(
            "RayServiceNotReady",
            gte(sel(m.KUBERAY_SERVICE_READY, eq={"condition": "false"}), num(1)),
            "critical", t.rayservice_not_ready_for,
            "RayService {{ $labels.name }} is not ready",
            "KubeRay reports Ready=false for RayService {{ $labels.name }}: no Serve endpoint "
            "takes traffic.",
            "rayservice-not-ready",
        ),
        Alert(
            "RayServiceUpgradeStuck",
            gte(sel(m.KUBERAY_SERVICE_UPGRADING, eq={"condition": "true"}), num(1)),
            "warning", t.rayservice_upgrade_for,
            "RayService {{ $labels.name }} has been upgrading for too long",
            f"UpgradeInProgress=true for more than {t.rayservice_upgrade_for}: the pending "
            "RayCluster does not become ready, and both clusters hold nodes.",
            "rayservice-upgrade-stuck",
        ),
        Alert(
            "RayHeadPodRestarted",
            gt(sum_by(increase(restarts, "15m"), "namespace", "pod"), num(0)),
            "warning", "0m",
            "Ray head pod {{ $labels.pod }} restarted",
            "A container of the Ray head pod {{ $labels.namespace }}/{{ $labels.pod }} "
            "restarted in the last 15 minutes; Serve state is rebuilt from the RayService.",
            "ray-head-restarted",
        ),
        Alert(
            "RayHeadMemoryHigh",
            gt(div(max_by(head_used, "ray_io_cluster"), max_by(head_total, "ray_io_cluster")),
               num(t.head_memory_ratio)),
            "warning", "10m",
            "Ray head of {{ $labels.ray_io_cluster }} is near its memory limit",
            f"Head node memory is at {{{{ $value | humanizePercentage }}}} of its limit "
            f"(bound {t.head_memory_ratio:.0%}); an OOM kill restarts the head.",
            "ray-head-memory",
        ),
    ]


def _gpu(t: AlertThresholds) -> list[Alert]:
    gpu = ("Hostname", "gpu", "UUID")
    return [
        Alert(
            "GPUXidError",
            gt(max_by(func("max_over_time", sel(m.DCGM_XID).range("5m")), *gpu), num(0)),
            "warning", "0m",
            "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID {{ $value }}",
            "DCGM reports XID error {{ $value }}; 48, 63, 64, 74, 79, 92, 94, 95 mean the GPU "
            "needs the node drained.",
            "gpu-xid-error",
        ),
        Alert(
            "GPUTooHot",
            gt(max_by(sel(m.DCGM_GPU_TEMP), *gpu), num(t.gpu_temp_celsius)),
            "warning", t.gpu_temp_for,
            "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is too hot",
            f"GPU temperature {{{{ $value }}}}°C (bound {t.gpu_temp_celsius:g}°C); it throttles.",
            "gpu-too-hot",
        ),
    ]


def _capacity(t: AlertThresholds) -> list[Alert]:
    gpu = {"resource_type": "nvidia.com/gpu"}
    at_limit = gte(
        sum_by(sel(m.KARPENTER_NODEPOOL_USAGE, eq=gpu), "nodepool"),
        sum_by(sel(m.KARPENTER_NODEPOOL_LIMIT, eq=gpu), "nodepool"),
    )
    pending_gpu_pods = gt(
        sum_by(and_(sel(m.KSM_CONTAINER_REQUESTS, eq={"resource": "nvidia_com_gpu"}),
                    sel(m.KSM_POD_UNSCHEDULABLE), on=["namespace", "pod"])),
        num(0),
    )
    spot = sel(m.KARPENTER_INTERRUPTIONS, eq={"message_type": "spot_interrupted"})
    return [
        Alert(
            "GPUPoolAtLimitWithPendingPods",
            and_(at_limit, pending_gpu_pods, on=()),
            "warning", t.pending_for,
            "GPU pool {{ $labels.nodepool }} is at its limit while GPU pods pend",
            "Karpenter cannot add GPUs to {{ $labels.nodepool }} (usage >= limit) and pods "
            "requesting GPUs are unschedulable: replicas cannot scale out.",
            "gpu-pool-at-limit",
        ),
        Alert(
            "SpotInterruptions",
            gte(sum_by(increase(spot, t.spot_window)), num(t.spot_interruptions)),
            "warning", "0m",
            "Spot instances are being interrupted",
            f"{{{{ $value | humanize }}}} spot interruption notices in {t.spot_window}; the "
            "replicas on those nodes restart elsewhere.",
            "spot-interruptions",
        ),
    ]


def _scrape(t: AlertThresholds) -> list[Alert]:
    absent: Expr | None = None
    for component, job in sorted(t.scrape_jobs.items()):
        one = label_set(func("absent", sel(m.UP, regex={"job": job})), "component", component)
        absent = one if absent is None else or_(absent, one)
    assert absent is not None, "scrape_jobs is empty"
    return [
        Alert(
            "ScrapeTargetDown",
            eq(sel(m.UP), num(0)),
            "warning", t.scrape_down_for,
            "{{ $labels.job }}: scrape target {{ $labels.instance }} is down",
            "Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}): the "
            "panels and alerts built on it go blind.",
            "scrape-target-down-or-absent",
        ),
        Alert(
            "ScrapeTargetAbsent",
            absent,
            "warning", t.scrape_absent_for,
            "{{ $labels.component }}: no scrape target at all",
            "No `up` series for {{ $labels.component }}: its monitor selects no pod or "
            "service (labels, namespace, or the exporter is not deployed).",
            "scrape-target-down-or-absent",
        ),
    ]


def _rag(t: AlertThresholds) -> list[Alert]:
    failed = sel(m.KSM_POD_PHASE, eq={"phase": "Failed"}, regex={"pod": t.rag_migration_pod_regex})
    return [
        Alert(
            "RagDatabaseUnreachable",
            gt(sum_by(rate(sel(m.RAG_DB_ERRORS), "2m"), "ray_io_cluster"), num(0)),
            "critical", t.rag_db_errors_for,
            "RAG database unreachable from {{ $labels.ray_io_cluster }}",
            f"The gateway has failed to reach PostgreSQL for {t.rag_db_errors_for} "
            "({{ printf \"%.2f\" $value }} failed operations/s): vector store calls and "
            "pipelines answer 503.",
            "rag-database-unreachable",
        ),
        Alert(
            "RagMigrationFailed",
            gt(max_by(failed, "namespace", "pod"), num(0)),
            "warning", "0m",
            "RAG schema migration pod {{ $labels.pod }} failed",
            "A pod of the RAG schema migration Job in {{ $labels.namespace }} failed: the "
            "database schema may be missing or old, and `pulumi up` fails once the Job gives up.",
            "rag-migration-failed",
        ),
    ]


def _tenants(t: AlertThresholds) -> list[Alert]:
    month = {"window": "month"}
    used = max_by(sel(m.TENANT_BUDGET_USED, eq=month), "key")
    limit = max_by(sel(m.TENANT_BUDGET_LIMIT, eq=month), "key")
    return [
        Alert(
            "TenantNearMonthlyBudget",
            gt(div(used, gt(limit, num(0))), num(t.tenant_budget_ratio)),
            "warning", t.tenant_budget_for,
            "Key {{ $labels.key }} has used most of its monthly token budget",
            f"Key {{{{ $labels.key }}}} has used {{{{ $value | humanizePercentage }}}} of its "
            f"monthlyTokens (bound {t.tenant_budget_ratio:.0%}); at 100% its requests get 429 "
            "insufficient_quota until the next UTC month.",
            "tenant-near-monthly-budget",
        ),
        Alert(
            "TenantLimitsWithoutRedis",
            gt(sum_by(increase(sel(m.TENANT_NO_REDIS), "5m"), "ray_io_cluster", "mode"), num(0)),
            "critical", t.tenant_no_redis_for,
            "Tenant limits decided without Redis in {{ $labels.ray_io_cluster }}",
            "{{ $value | humanize }} requests of limited keys were decided without Redis in 5m "
            "(redisFailureMode {{ $labels.mode }}): open admits them uncounted, closed refuses "
            "them with 503.",
            "tenant-limits-without-redis",
        ),
    ]


@dataclass(frozen=True)
class Recording:
    record: str
    expr: Expr
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> set[str]:
        return metric_names(self.expr)

    def to_rule(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "expr": str(self.expr)}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


def recordings(
    thresholds: AlertThresholds | None = None,
    replica_usd_per_hour: Mapping[str, float] | None = None,
) -> list[Recording]:
    """USD per 1M tokens per model and per key (docs/tenants.md explains the formula).

    `replica_usd_per_hour`: model id -> USD per hour of one replica's GPUs, computed from the
    stack config and infra/capacity/catalog.py (infra/config/cost_ceiling.py); each becomes a
    constant series. Models without a price (CPU-only) get no cost series."""
    t = thresholds or AlertThresholds()
    w = t.cost_window
    cluster, model = "ray_io_cluster", "model_name"
    prices = [
        Recording(m.COST_REPLICA_USD_H, func("vector", num(price)), {model: model_id})
        for model_id, price in sorted((replica_usd_per_hour or {}).items())
    ]
    # Idle replicas too: vLLM's gauges leave the scrape when an engine is idle
    # (serve_app/replica_metric.py), its GPUs still cost.
    engines = group_by(sel(m.MODEL_REPLICA), cluster, model, "ReplicaId")
    key_by = (cluster, "key", "model")
    prompt = sum_by(rate(sel(m.TENANT_PROMPT_TOKENS), w), *key_by)
    completion = sum_by(rate(sel(m.TENANT_COMPLETION_TOKENS), w), *key_by)
    per_token_usd = div(func("avg_over_time", sel(m.COST_MODEL_USD_H).range(w)), num(3600))
    return [
        *prices,
        # Serve replicas of each model now: one ReplicaId per replica (its engines share it).
        Recording(m.COST_MODEL_REPLICAS, count_by(engines, cluster, model)),
        Recording(m.COST_MODEL_USD_H, mul(sel(m.COST_MODEL_REPLICAS), sel(m.COST_REPLICA_USD_H),
                                          on=[model], group_left=True)),
        Recording(m.COST_MODEL_TOKENS_S, add(
            sum_by(rate(sel(m.VLLM_PROMPT_TOKENS), w), cluster, model),
            sum_by(rate(sel(m.VLLM_GENERATION_TOKENS), w), cluster, model),
        )),
        # USD per second over the window / tokens per second, x 1e6; nothing for an idle model.
        Recording(m.COST_MODEL_USD_PER_1M, div(mul(per_token_usd, num(1e6)),
                                               gt(sel(m.COST_MODEL_TOKENS_S), num(0)))),
        # A key's tokens per second per model (embeddings have no completion tokens).
        Recording(m.COST_KEY_MODEL_TOKENS_S,
                  label_copy(add(prompt, zero_if_absent(completion, prompt)), model, "model")),
        # Every token a key used costs what a token of that model cost in the window.
        Recording(m.COST_KEY_USD_H, div(mul(sum_by(
            mul(sel(m.COST_KEY_MODEL_TOKENS_S), sel(m.COST_MODEL_USD_PER_1M),
                on=[cluster, model], group_left=True), cluster, "key"), num(3600)), num(1e6))),
        Recording(m.COST_KEY_USD_PER_1M, div(
            div(mul(sel(m.COST_KEY_USD_H), num(1e6)), num(3600)),
            gt(sum_by(sel(m.COST_KEY_MODEL_TOKENS_S), cluster, "key"), num(0)))),
    ]


GROUPS: dict[str, Callable[[AlertThresholds], list[Alert]]] = {
    "llm-serving": _serving,
    "rayservice": _rayservice,
    "gpu": _gpu,
    "capacity": _capacity,
    "scrape": _scrape,
    "rag": _rag,
    "tenants": _tenants,
}


def alerts(thresholds: AlertThresholds | None = None) -> list[Alert]:
    t = thresholds or AlertThresholds()
    return [a for build in GROUPS.values() for a in build(t)]


def rule_groups(
    thresholds: AlertThresholds | None = None,
    replica_usd_per_hour: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """PrometheusRule `spec.groups`: one group of alerts per concern, and the cost recording
    rules (`replica_usd_per_hour`: see `recordings`)."""
    t = thresholds or AlertThresholds()
    return [
        *({"name": f"llm-platform.{name}", "rules": [a.to_rule(t) for a in build(t)]}
          for name, build in GROUPS.items()),
        {"name": "llm-platform.cost",
         "rules": [r.to_rule() for r in recordings(t, replica_usd_per_hour)]},
    ]
