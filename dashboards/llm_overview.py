"""Dashboard 1, LLM overview: what users get, per model."""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER_VAR, MODEL, MODEL_VAR, ray, vllm, vllm_filter
from dashboards.promql import and_, div, gt, num, quantile, rate, ratio, sum_by
from dashboards.spec import DashboardSpec, Kind, PanelSpec, Query

PERCENTILES = (0.5, 0.95, 0.99)


def _latency(title: str, about: str, histogram: str) -> PanelSpec:
    queries = tuple(
        Query(quantile(p, histogram + "_bucket", by=[MODEL], regex=vllm_filter()),
              f"p{round(p * 100)} {{{{{MODEL}}}}}")
        for p in PERCENTILES
    )
    return PanelSpec(title, about, queries, unit="s")


def slo_attainment(slo_s: float, window: str = "$__range") -> Query:
    """Share of requests whose TTFT was at most `slo_s` (a TTFT bucket boundary), per model;
    no series for a model without requests in the window (rather than a false 0%)."""
    if slo_s not in m.TTFT_BUCKETS_S:  # AlertThresholds validates it first
        raise ValueError(f"TTFT SLO {slo_s}s is not a bucket of {m.VLLM_TTFT}")
    # Prometheus 2 keeps `le` as exposed ("1.0"); Prometheus 3 normalises it to "1": match both.
    le = f"{slo_s:g}|{float(slo_s)!r}"
    under = sum_by(rate(vllm(m.VLLM_TTFT + "_bucket", le=le), window), MODEL)
    total = sum_by(rate(vllm(m.VLLM_TTFT + "_count"), window), MODEL)
    seen = gt(sum_by(rate(vllm(m.VLLM_TTFT + "_count"), window), MODEL), num(0))
    return Query(and_(div(under, total), seen, on=[MODEL]), f"{{{{{MODEL}}}}}")


def spec(ttft_slo_s: float) -> DashboardSpec:
    http = ray(m.SERVE_HTTP_REQUESTS)
    http_5xx = ray(m.SERVE_HTTP_REQUESTS, status_code="5..")
    traffic = (
        PanelSpec(
            "Requests per second by model",
            "Requests the engines finished per second (any finish reason).",
            (Query(sum_by(rate(vllm(m.VLLM_REQUEST_SUCCESS)), MODEL), f"{{{{{MODEL}}}}}"),),
            unit="reqps",
        ),
        PanelSpec(
            "Tokens per second by model",
            "Prompt tokens read (in) and tokens generated (out) per second.",
            (
                Query(sum_by(rate(vllm(m.VLLM_PROMPT_TOKENS)), MODEL), f"in {{{{{MODEL}}}}}"),
                Query(sum_by(rate(vllm(m.VLLM_GENERATION_TOKENS)), MODEL),
                      f"out {{{{{MODEL}}}}}"),
            ),
            unit="short",
        ),
    )
    latency = (
        _latency("Time to first token", "p50/p95/p99 from request arrival in the engine to "
                 "its first token; no line when a model had no request.", m.VLLM_TTFT),
        _latency("Inter-token latency", "p50/p95/p99 gap between two generated tokens of a "
                 "stream.", m.VLLM_ITL),
        _latency("End-to-end latency", "p50/p95/p99 engine time from arrival to last token.",
                 m.VLLM_E2E),
    )
    quality = (
        PanelSpec(
            "Error ratio by application",
            "Share of HTTP requests Ray Serve answered 5xx, per Serve application (the model "
            "is in the request body, not in a label); 0 when idle.",
            (Query(ratio(sum_by(rate(http_5xx), "application"),
                         sum_by(rate(http), "application")), "{{application}}"),),
            unit="percentunit", max_value=1,
        ),
        PanelSpec(
            f"TTFT SLO attainment (<= {ttft_slo_s:g}s, time range)",
            f"Share of requests over the dashboard's time range whose time to first token was "
            f"at most {ttft_slo_s:g}s, per model; no value for a model without requests.",
            (slo_attainment(ttft_slo_s),),
            unit="percentunit", kind=Kind.STAT, max_value=1,
        ),
    )
    return DashboardSpec(
        uid="llm-overview",
        title="LLM overview",
        about="Traffic, latency and errors of the served models (vLLM inside Ray Serve).",
        variables=(CLUSTER_VAR, MODEL_VAR),
        rows=(("Traffic", traffic), ("Latency", latency), ("Errors and SLO", quality)),
    )
