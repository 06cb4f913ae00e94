"""Dashboard 6, Tenants: usage, limits, budgets and cost per API key (serve_app/tenants).

The gateway labels its series with the key's *name* (`key`, never the secret) and the model id
the request ran on (`model`); vLLM's own series call it `model_name`, and so do the cost
recording rules (dashboards/rules.py `recordings`, formula in docs/tenants.md).
"""

from __future__ import annotations

from dashboards import metrics as m
from dashboards.filters import CLUSTER, CLUSTER_VAR
from dashboards.promql import (
    add,
    div,
    func,
    gt,
    increase,
    max_by,
    num,
    quantile,
    rate,
    sel,
    sum_by,
    zero_if_absent,
)
from dashboards.spec import DashboardSpec, Kind, PanelSpec, Query, Variable

KEY, MODEL = "key", "model"
FILTER = {CLUSTER: "$cluster", KEY: "$key", MODEL: "$model"}
KEY_VAR = Variable("key", "Key", sel(m.TENANT_REQUESTS, regex={CLUSTER: "$cluster"}), KEY)
TENANT_MODEL_VAR = Variable(
    "model", "Model", sel(m.TENANT_REQUESTS, regex={CLUSTER: "$cluster", KEY: "$key"}), MODEL
)
TOP = 10


def tenant(metric: str, eq: dict[str, str] | None = None):
    """A gateway series of the selected cluster(s), key(s) and model(s)."""
    return sel(metric, eq, FILTER)


def _plus(prompt, completion):
    """prompt + completion tokens (a key of embeddings has no completion series)."""
    return add(prompt, zero_if_absent(completion, prompt))


def spec() -> DashboardSpec:
    usage = (
        PanelSpec(
            "Tokens per second by key and model",
            "Prompt tokens (in) and completion tokens (out) of finished requests per second, "
            "as the answers' usage reports them.",
            (
                Query(sum_by(rate(tenant(m.TENANT_PROMPT_TOKENS)), KEY, MODEL),
                      "in {{key}} {{model}}"),
                Query(sum_by(rate(tenant(m.TENANT_COMPLETION_TOKENS)), KEY, MODEL),
                      "out {{key}} {{model}}"),
            ),
        ),
        PanelSpec(
            "Requests per second by key and outcome",
            "Requests of each key by outcome: ok, error, cancelled (the client went away), "
            "rejected (a limit; see Rejections).",
            (Query(sum_by(rate(tenant(m.TENANT_REQUESTS)), KEY, "outcome"),
                   "{{key}} {{outcome}}"),),
            unit="reqps",
        ),
        PanelSpec(
            f"Top {TOP} keys by tokens (time range)",
            "Prompt + completion tokens per key over the dashboard's time range, largest first.",
            (Query(func("topk", num(TOP), _plus(
                sum_by(increase(tenant(m.TENANT_PROMPT_TOKENS), "$__range"), KEY),
                sum_by(increase(tenant(m.TENANT_COMPLETION_TOKENS), "$__range"), KEY),
            )), "{{key}}"),),
            kind=Kind.STAT,
        ),
    )
    budget_used = max_by(sel(m.TENANT_BUDGET_USED, regex={CLUSTER: "$cluster", KEY: "$key"}),
                         KEY, "window")
    budget_limit = max_by(sel(m.TENANT_BUDGET_LIMIT, regex={CLUSTER: "$cluster", KEY: "$key"}),
                          KEY, "window")
    limits = (
        PanelSpec(
            "Rejections by key and reason",
            "Requests refused per second: rpm, tpm, concurrency (429 rate_limit_exceeded), "
            "daily_tokens, monthly_tokens (429 insufficient_quota), redis_unavailable (503, "
            "redisFailureMode closed).",
            (Query(sum_by(rate(tenant(m.TENANT_REJECTIONS)), KEY, "reason"),
                   "{{key}} {{reason}}"),),
            unit="reqps",
        ),
        PanelSpec(
            "Admission latency",
            "p50/p99 time to admit a request of a limited key (one Redis round trip); the "
            "target is 1 ms p50, 3 ms p99. Near serving.tenants.redisTimeoutMs: Redis is slow.",
            tuple(Query(quantile(p, m.TENANT_ADMISSION_S + "_bucket", regex=FILTER),
                        f"p{round(p * 100)}") for p in (0.5, 0.99)),
            unit="s",
        ),
        PanelSpec(
            "Budget used",
            "Share of each key's dailyTokens (day) and monthlyTokens (month) used in the current "
            "UTC day or month, reservations in flight included. The alert "
            "TenantNearMonthlyBudget fires above 90% of the month.",
            (Query(div(budget_used, gt(budget_limit, num(0))), "{{key}} {{window}}"),),
            unit="percentunit",
        ),
        PanelSpec(
            "Decisions without Redis",
            "Requests of limited keys decided without Redis per interval, by redisFailureMode "
            "and decision (admitted uncounted, refused, settlement_lost); any is the alert "
            "TenantLimitsWithoutRedis.",
            (Query(sum_by(increase(sel(m.TENANT_NO_REDIS, regex={CLUSTER: "$cluster"}),
                                   "$__rate_interval"), "mode", "decision"),
                   "{{mode}} {{decision}}"),),
        ),
    )
    model_cost = {CLUSTER: "$cluster", "model_name": "$model"}
    key_cost = {CLUSTER: "$cluster", KEY: "$key"}
    cost = (
        PanelSpec(
            "USD per 1M tokens by model",
            "GPU cost of the model's replicas over the cost window divided by the tokens it "
            "served (docs/tenants.md); on-demand prices, not billing. No line for an idle model.",
            (Query(sel(m.COST_MODEL_USD_PER_1M, regex=model_cost), "{{model_name}}"),),
            unit="currencyUSD",
        ),
        PanelSpec(
            "USD per 1M tokens by key",
            "Each token a key used priced at its model's USD per 1M tokens, averaged over the "
            "key's tokens (tokens of models without GPUs cost nothing here).",
            (Query(sel(m.COST_KEY_USD_PER_1M, regex=key_cost), "{{key}}"),),
            unit="currencyUSD",
        ),
        PanelSpec(
            "Chargeback: USD per hour by key",
            "What each key's tokens cost per hour at its models' USD per 1M tokens.",
            (Query(sel(m.COST_KEY_USD_H, regex=key_cost), "{{key}}"),),
            unit="currencyUSD",
        ),
        PanelSpec(
            "GPU cost per hour by model",
            "Replicas now x USD per replica-hour (the GPU share of the pool's smallest instance "
            "that holds a replica, infra/capacity/catalog.py prices).",
            (Query(sel(m.COST_MODEL_USD_H, regex=model_cost), "{{model_name}}"),),
            unit="currencyUSD",
        ),
    )
    return DashboardSpec(
        uid="tenants",
        title="Tenants",
        about="Per API key: tokens and requests by model, top keys, rejections by reason, "
              "admission latency, budget used, and USD per 1M tokens per model and per key.",
        variables=(CLUSTER_VAR, KEY_VAR, TENANT_MODEL_VAR),
        rows=(("Usage", usage), ("Limits and budgets", limits), ("Cost", cost)),
    )
