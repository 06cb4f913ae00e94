"""Dashboard 2, engine saturation: is vLLM the bottleneck (slots, KV cache, queueing)?"""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER_VAR, MODEL, MODEL_VAR, vllm, vllm_filter
from dashboards.promql import max_by, quantile, rate, ratio, sum_by, zero_if_absent
from dashboards.spec import DashboardSpec, PanelSpec, Query

REPLICA = "ReplicaId"  # vLLM-in-Serve label; equals the Serve `replica` label
PER_REPLICA = f"{{{{{MODEL}}}}} {{{{{REPLICA}}}}}"


def spec() -> DashboardSpec:
    slots = (
        PanelSpec(
            "Running requests",
            "Requests in the engine's running batch, per replica.",
            (Query(sum_by(vllm(m.VLLM_RUNNING), MODEL, REPLICA), PER_REPLICA),),
        ),
        PanelSpec(
            "Waiting requests",
            "Requests queued inside the engine for a batch slot or KV blocks, per replica.",
            (Query(sum_by(vllm(m.VLLM_WAITING), MODEL, REPLICA), PER_REPLICA),),
        ),
        PanelSpec(
            "KV-cache usage",
            "Fraction of the engine's KV-cache blocks in use (1 = full: new requests wait, "
            "running ones may be preempted).",
            (Query(max_by(vllm(m.VLLM_KV_CACHE_USAGE), MODEL, REPLICA), PER_REPLICA),),
            unit="percentunit", max_value=1,
        ),
        PanelSpec(
            "Preemptions per second",
            "Running requests evicted to free KV cache (they restart later); 0 until the first "
            "preemption (Ray exports the counter from its first increment).",
            (Query(zero_if_absent(sum_by(rate(vllm(m.VLLM_PREEMPTIONS)), MODEL),
                                  sum_by(vllm(m.MODEL_REPLICA), MODEL)), f"{{{{{MODEL}}}}}"),),
            unit="short",
        ),
        PanelSpec(
            "Prefix-cache hit ratio",
            "Share of prompt tokens found in the prefix cache (tokens hit / tokens queried); "
            "0 when idle.",
            (Query(ratio(sum_by(rate(vllm(m.VLLM_PREFIX_HITS)), MODEL),
                         sum_by(rate(vllm(m.VLLM_PREFIX_QUERIES)), MODEL)),
                   f"{{{{{MODEL}}}}}"),),
            unit="percentunit", max_value=1,
        ),
    )
    phases = tuple(
        PanelSpec(
            f"{name} time p95",
            f"p95 time requests spent {what}; no line when a model had no request.",
            (Query(quantile(0.95, metric + "_bucket", by=[MODEL], regex=vllm_filter()),
                   f"p95 {{{{{MODEL}}}}}"),),
            unit="s", width=8,
        )
        for name, what, metric in (
            ("Queue", "waiting in the engine queue", m.VLLM_QUEUE_TIME),
            ("Prefill", "in prefill (reading the prompt)", m.VLLM_PREFILL_TIME),
            ("Decode", "in decode (generating tokens)", m.VLLM_DECODE_TIME),
        )
    )
    return DashboardSpec(
        uid="llm-engine-saturation",
        title="LLM engine saturation",
        about="vLLM engine pressure per model and replica: batch slots, KV cache, queueing.",
        variables=(CLUSTER_VAR, MODEL_VAR),
        rows=(("Slots and KV cache", slots), ("Where request time goes", phases)),
    )
