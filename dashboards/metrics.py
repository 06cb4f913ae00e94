"""Every metric name a panel or rule may use, by where it comes from.

One source of truth: panels and rules name metrics only through these constants, and the tests
check each family against reality:
- RAY (Ray core, Serve, vLLM inside Ray Serve): in the scrape of the local app by a real
  Prometheus (tests/e2e/test_observability.py). Ray 2.60 exports through OpenTelemetry:
  counters only with `_total`, Serve latencies in milliseconds, vLLM's `vllm:<name>` as
  `ray_vllm_<name>` with `model_name` and `ReplicaId` labels.
- DCGM, KARPENTER, KUBERAY, KSM: in ../shared/notes/metrics-upstream.txt, read from upstream
  source at the pinned versions (dcgm-exporter chart 4.8.2, Karpenter 1.14.1, KubeRay 1.7.0,
  kube-state-metrics 2.20.0); tests/unit/dashboards/test_metric_names.py.
- PROMETHEUS: series Prometheus makes itself for every target (`up`).
- RULES: series our own recording rules make (dashboards/rules.py; a unit test checks each
  name used is recorded, the e2e that every one has data on a real scrape).
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    RAY = "ray"
    DCGM = "dcgm"
    KARPENTER = "karpenter"
    KUBERAY = "kuberay"
    KSM = "kube-state-metrics"
    PROMETHEUS = "prometheus"
    RULES = "recording rule"


# --- vLLM engine inside Ray Serve LLM (labels: model_name, engine, ReplicaId)
VLLM_RUNNING = "ray_vllm_num_requests_running"
VLLM_WAITING = "ray_vllm_num_requests_waiting"
VLLM_KV_CACHE_USAGE = "ray_vllm_kv_cache_usage_perc"  # fraction 0..1
VLLM_PREEMPTIONS = "ray_vllm_num_preemptions_total"
VLLM_PREFIX_QUERIES = "ray_vllm_prefix_cache_queries_total"  # tokens looked up
VLLM_PREFIX_HITS = "ray_vllm_prefix_cache_hits_total"  # tokens found
VLLM_PROMPT_TOKENS = "ray_vllm_prompt_tokens_total"
VLLM_GENERATION_TOKENS = "ray_vllm_generation_tokens_total"
VLLM_REQUEST_SUCCESS = "ray_vllm_request_success_total"  # label finished_reason
VLLM_TTFT = "ray_vllm_time_to_first_token_seconds"
VLLM_ITL = "ray_vllm_inter_token_latency_seconds"
VLLM_E2E = "ray_vllm_e2e_request_latency_seconds"
VLLM_QUEUE_TIME = "ray_vllm_request_queue_time_seconds"
VLLM_PREFILL_TIME = "ray_vllm_request_prefill_time_seconds"
VLLM_DECODE_TIME = "ray_vllm_request_decode_time_seconds"

# --- Ray Serve (labels: application, deployment, replica, route; latencies in ms)
SERVE_HTTP_REQUESTS = "ray_serve_num_http_requests_total"  # + method, status_code
SERVE_HTTP_LATENCY_MS = "ray_serve_http_request_latency_ms"
SERVE_REQUESTS = "ray_serve_deployment_request_counter_total"
SERVE_ERRORS = "ray_serve_deployment_error_counter_total"
SERVE_PROCESSING_MS = "ray_serve_deployment_processing_latency_ms"
SERVE_QUEUED = "ray_serve_deployment_queued_queries"
SERVE_REPLICA_ONGOING = "ray_serve_replica_processing_queries"
SERVE_REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
SERVE_REPLICA_STARTS = "ray_serve_deployment_replica_starts_total"
SERVE_TARGET_REPLICAS = "ray_serve_autoscaling_target_replicas"

# --- The gateway's canary rollback (serve_app/rollback.py: ray.util.metrics gauges of the
# application's coordinator actor; labels alias, target)
GATEWAY_ALIAS_ROLLED_BACK = "ray_llm_platform_alias_rolled_back"  # 1 while rolled back
GATEWAY_ALIAS_ERROR_RATIO = "ray_llm_platform_alias_target_error_ratio"  # over the window

# --- One series per model replica, busy or idle (serve_app/replica_metric.py: vLLM's own gauges
# leave the scrape ~20 s after an engine's last output); labels model_name, ReplicaId
MODEL_REPLICA = "ray_llm_platform_model_replica"

# --- Ray core (node-level, per Ray node = per pod on Kubernetes)
# The container's memory (cgroup) and its limit: what an OOM kill compares. Ray 2.60 also has
# ray_node_mem_* (host-wide outside a container) and ray_node_mem_*_host.
RAY_NODE_MEM_USED = "ray_node_cgroup_mem_used"
RAY_NODE_MEM_TOTAL = "ray_node_cgroup_mem_total"
RAY_NODE_CPU = "ray_node_cpu_utilization"

# --- RAG in the gateway (serve_app/rag/metrics.py; Ray prefixes `ray_`). Seconds, not ms.
RAG_RETRIEVAL_S = "ray_llm_platform_rag_retrieval_seconds"  # histogram, label source
RAG_CHUNKS_SEARCHED = "ray_llm_platform_rag_chunks_searched"  # histogram, label source
RAG_INGESTED_CHUNKS = "ray_llm_platform_rag_ingested_chunks_total"
RAG_INGESTED_BYTES = "ray_llm_platform_rag_ingested_bytes_total"
RAG_INGEST_S = "ray_llm_platform_rag_ingest_seconds"  # histogram: one file, end to end
RAG_STORE_CHUNKS = "ray_llm_platform_rag_store_chunks"  # gauge per tenant; every replica: max
RAG_STORE_BYTES = "ray_llm_platform_rag_store_bytes"
RAG_DB_ERRORS = "ray_llm_platform_rag_db_errors_total"  # label operation: database unreachable

# --- Per-key metering in the gateway (serve_app/tenants/metrics.py; Ray prefixes `ray_`).
# Labels key (the key's name, never the secret) and model (the model id the request ran on).
TENANT_REQUESTS = "ray_llm_platform_tenant_requests_total"  # + outcome
TENANT_REJECTIONS = "ray_llm_platform_tenant_rejections_total"  # + reason
TENANT_PROMPT_TOKENS = "ray_llm_platform_tenant_prompt_tokens_total"
TENANT_COMPLETION_TOKENS = "ray_llm_platform_tenant_completion_tokens_total"
TENANT_ADMISSION_S = "ray_llm_platform_tenant_admission_seconds"  # histogram, seconds
# Decisions made without Redis (labels mode, decision; no key): limits not counted.
TENANT_NO_REDIS = "ray_llm_platform_tenant_redis_unavailable_decisions_total"
# Gauges (labels key, window=day|month), from every ingress replica alike: take max.
TENANT_BUDGET_USED = "ray_llm_platform_tenant_budget_used_tokens"
TENANT_BUDGET_LIMIT = "ray_llm_platform_tenant_budget_limit_tokens"

# --- NVIDIA DCGM exporter (labels: gpu, UUID, Hostname, modelName; pod labels if enabled)
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"  # W
DCGM_ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"  # mJ since boot (counter)
DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"  # °C
DCGM_MEM_TEMP = "DCGM_FI_DEV_MEMORY_TEMP"  # °C
DCGM_XID = "DCGM_FI_DEV_XID_ERRORS"  # value of the last XID error
DCGM_TENSOR_ACTIVE = "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"  # fraction 0..1

# --- Karpenter 1.14.1 (labels: nodepool, capacity_type, instance_type, resource_type, ...)
KARPENTER_NODES_ALLOCATABLE = "karpenter_nodes_allocatable"
KARPENTER_NODEPOOL_USAGE = "karpenter_nodepools_usage"
KARPENTER_NODEPOOL_LIMIT = "karpenter_nodepools_limit"
KARPENTER_NODECLAIMS_CREATED = "karpenter_nodeclaims_created_total"
KARPENTER_NODECLAIMS_DISRUPTED = "karpenter_nodeclaims_disrupted_total"
KARPENTER_INTERRUPTIONS = "karpenter_interruption_received_messages_total"  # message_type
KARPENTER_NODEPOOL_COST = "karpenter_nodepools_cost_total"  # gauge: price of the pool's nodes

# --- KubeRay 1.7.0 operator (labels: name, namespace, uid, condition="true"|"false"; value 1)
KUBERAY_SERVICE_READY = "kuberay_service_condition_ready"
KUBERAY_SERVICE_UPGRADING = "kuberay_service_condition_upgrade_in_progress"

# --- kube-state-metrics 2.20.0
KSM_POD_PHASE = "kube_pod_status_phase"
KSM_POD_UNSCHEDULABLE = "kube_pod_status_unschedulable"
KSM_POD_REASON = "kube_pod_status_reason"
KSM_CONTAINER_RESTARTS = "kube_pod_container_status_restarts_total"
KSM_CONTAINER_REQUESTS = "kube_pod_container_resource_requests"
KSM_CONTAINER_WAITING = "kube_pod_container_status_waiting_reason"

# --- Prometheus itself
UP = "up"

# --- Recorded by dashboards/rules.py (group llm-platform.cost); see docs/tenants.md.
# Labels ray_io_cluster and model_name (per model) or key (per key).
COST_REPLICA_USD_H = "llm_platform:model_replica_usd_per_hour"  # constant per model, no cluster
COST_MODEL_REPLICAS = "llm_platform:model_replicas"
COST_MODEL_USD_H = "llm_platform:model_usd_per_hour"
COST_MODEL_TOKENS_S = "llm_platform:model_tokens_per_second"
COST_MODEL_USD_PER_1M = "llm_platform:model_usd_per_1m_tokens"
COST_KEY_MODEL_TOKENS_S = "llm_platform:key_model_tokens_per_second"  # + model_name
COST_KEY_USD_H = "llm_platform:key_usd_per_hour"
COST_KEY_USD_PER_1M = "llm_platform:key_usd_per_1m_tokens"

SOURCES: dict[str, Source] = {}
for _name, _value in list(globals().items()):
    if _name.isupper() and isinstance(_value, str):
        prefix = _value.split("_", 1)[0]
        SOURCES[_value] = {
            "ray": Source.RAY,
            "DCGM": Source.DCGM,
            "karpenter": Source.KARPENTER,
            "kuberay": Source.KUBERAY,
            "kube": Source.KSM,
            "up": Source.PROMETHEUS,
            "llm": Source.RULES,
        }[prefix]

# vLLM 0.29 TTFT histogram buckets, in seconds (vllm/v1/metrics/loggers.py): an SLO read from
# the histogram (attainment = share of requests under it) must be one of these boundaries.
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                  5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)

HISTOGRAMS = {VLLM_TTFT, VLLM_ITL, VLLM_E2E, VLLM_QUEUE_TIME, VLLM_PREFILL_TIME,
              VLLM_DECODE_TIME, SERVE_HTTP_LATENCY_MS, SERVE_PROCESSING_MS, RAG_RETRIEVAL_S,
              RAG_CHUNKS_SEARCHED, RAG_INGEST_S, TENANT_ADMISSION_S}


def source_of(series: str) -> Source:
    """The source of a series name (`x_bucket`/`x_count`/`x_sum` of a histogram `x` too)."""
    for suffix in ("_bucket", "_count", "_sum"):
        base = series.removesuffix(suffix)
        if base != series and base in HISTOGRAMS:
            return SOURCES[base]
    if series not in SOURCES:
        raise KeyError(f"{series}: not declared in dashboards/metrics.py")
    return SOURCES[series]
