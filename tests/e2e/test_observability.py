"""Dashboards and alert rules against a real scrape of the local app.

A real Prometheus (Debian's `prometheus` package, `make promtool`) scrapes the session app's Ray
metrics endpoint (`LLM_PLATFORM_METRICS_PORT`: every Ray, Serve and vLLM metric) the way the
Ray PodMonitor does on the cluster, including the `ray_io_cluster` label it copies from the pod
label. After traffic through the `openai` client:
- every Ray/Serve/vLLM metric named by any panel, template variable or alert is in the scrape;
- every panel of the LLM-overview and engine-saturation dashboards returns data (no NaN) with
  the template variables set as a user would;
- every alert expression evaluates.
The per-panel report of every dashboard goes to build/e2e/dashboards-check.txt (`make
dashboards-check` prints it).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from dashboards import metrics as m
from dashboards.build import all_specs
from dashboards.inventory import used_metrics
from dashboards.rules import alerts
from tests.e2e.conftest import LOG_DIR, LocalApp
from tests.e2e.prometheus import CLUSTER, SCRAPE_INTERVAL_S, running_prometheus, wait_for
from tools import verify
from tools.dashboards_check import check, instant_query, report, substitute

pytestmark = pytest.mark.e2e

MODELS = ("tiny-chat", "tiny-chat-v2")
# What a user picks in Grafana: this cluster, both models (a multi-value regex), all the rest.
VARIABLES = {"cluster": CLUSTER, "model": "(" + "|".join(MODELS) + ")"}
MUST_HAVE_DATA = ("llm-overview.json", "llm-engine-saturation.json")
REPORT = LOG_DIR / "dashboards-check.txt"
SCRAPED = LOG_DIR / "scraped-metrics.txt"
# Counters Ray exports only from their first increment, which this test cannot cause on a CPU
# engine: each must instead be defined in the installed (pinned) package's source, under the
# name Ray exports it from (`ray_` + name + `_total`; vLLM's `vllm:` becomes `ray_vllm_`).
ON_FIRST_EVENT = {
    m.VLLM_PREEMPTIONS: ("vllm", '"vllm:num_preemptions"',
                         "no request is preempted: the tiny model's KV cache never fills"),
    m.SERVE_ERRORS: ("ray.serve", '"serve_deployment_error_counter"',
                     "no replica raises: the gateway answers bad requests itself (4xx)"),
}
# The RAG row and alerts (serve_app/rag/metrics.py): this traffic makes no vector store call.
for _series, _base in {
    m.RAG_RETRIEVAL_S + "_bucket": m.RAG_RETRIEVAL_S,
    m.RAG_RETRIEVAL_S + "_count": m.RAG_RETRIEVAL_S,
    m.RAG_CHUNKS_SEARCHED + "_sum": m.RAG_CHUNKS_SEARCHED,
    m.RAG_CHUNKS_SEARCHED + "_count": m.RAG_CHUNKS_SEARCHED,
    m.RAG_INGESTED_CHUNKS: m.RAG_INGESTED_CHUNKS,
    m.RAG_INGESTED_BYTES: m.RAG_INGESTED_BYTES,
    m.RAG_STORE_CHUNKS: m.RAG_STORE_CHUNKS,
    m.RAG_STORE_BYTES: m.RAG_STORE_BYTES,  # the capacity dashboard's RAG database row
    m.RAG_DB_ERRORS: m.RAG_DB_ERRORS,
}.items():
    # Ray exports a metric named `x` as `ray_x` (counters `ray_x_total`).
    _name = _base.removeprefix("ray_").removesuffix("_total")
    ON_FIRST_EVENT[_series] = ("serve_app", f'"{_name}', "no RAG call in this traffic")


@pytest.fixture(scope="module")
def prometheus(local_app: LocalApp, tmp_path_factory) -> Iterator[str]:
    assert local_app.metrics_port, "the session app was started without a metrics port"
    with running_prometheus(local_app.metrics_port,
                            tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def _requests(client, model: str, prefix: str, n: int) -> int:
    """`n` chat completions and `n` streamed completions; returns how many were sent."""
    for i in range(n):
        client.chat.completions.create(
            model=model, max_tokens=8,
            messages=[{"role": "user", "content": f"{prefix} Question {i}?"}],
        )
        stream = client.completions.create(model=model, prompt=prefix + str(i),
                                           max_tokens=16, stream=True)
        for _ in stream:
            pass
    return 2 * n


def _total(prom: str, metric: str, model: str) -> float:
    result = instant_query(prom, f'sum({metric}{{model_name="{model}", '
                                 f'ray_io_cluster="{CLUSTER}"}})')
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def traffic(local_app: LocalApp, prometheus: str) -> dict[str, int]:
    """Chat and streamed completions on both models, with a shared prompt prefix (prefix-cache
    hits) and one request for an unknown model (a 404 in the HTTP counters).

    In two rounds: Ray exports a series from its first observation on, and `rate()` sees an
    increase only between two scrapes of an existing series. Round one makes every series exist
    in Prometheus (as on a live system); round two is the traffic the panels must show."""
    client = local_app.client()
    prefix = "You are a helpful assistant for the llm-platform end-to-end test. " * 4
    sent = dict.fromkeys(MODELS, 0)
    ttft = m.VLLM_TTFT + "_count"
    for model in MODELS:
        before = _total(prometheus, ttft, model)
        sent[model] += _requests(client, model, prefix, 1)
        wait_for(prometheus, f'sum({ttft}{{model_name="{model}"}})', before + sent[model])
    time.sleep(2 * SCRAPE_INTERVAL_S)
    start = {model: _total(prometheus, ttft, model) for model in MODELS}
    for model in MODELS:
        n = _requests(client, model, prefix, 4)
        sent[model] += n
        start[model] += n
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", max_tokens=4,
                                       messages=[{"role": "user", "content": "hi"}])
    for model in MODELS:  # Ray exports every few seconds; wait until Prometheus has it all
        wait_for(prometheus, f'sum({ttft}{{model_name="{model}", '
                  f'ray_io_cluster="{CLUSTER}"}})', start[model])
    wait_for(prometheus, f'sum(ray_serve_num_http_requests_total{{status_code="404", '
              f'ray_io_cluster="{CLUSTER}"}})', 1)
    return sent


# Per-key metering needs limited keys and a Redis: proven on the scrape of the tenants app
# instead (tests/e2e/test_tenants.py).
TENANT_PREFIX = "ray_llm_platform_tenant_"


def _used_ray_metrics() -> dict[str, set[str]]:
    """Ray/Serve/vLLM series name -> where it is used (panels, variables, alerts)."""
    return {k: v for k, v in used_metrics().items()
            if m.source_of(k) is m.Source.RAY and not k.startswith(TENANT_PREFIX)}


def _defined_in_source(package: str, literal: str) -> bool:
    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    return any(literal in f.read_text(errors="replace") for f in root.rglob("*.py"))


def test_every_ray_serve_vllm_metric_used_is_scraped(prometheus, traffic):
    r = httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=30).json()
    scraped = set(r["data"])
    SCRAPED.write_text("".join(f"{n}\n" for n in sorted(scraped)))
    used = _used_ray_metrics()
    assert len(used) >= 25, sorted(used)
    missing = {k: sorted(v) for k, v in used.items() if k not in scraped}
    unexplained = {k: v for k, v in missing.items() if k not in ON_FIRST_EVENT}
    assert unexplained == {}, f"not in the scrape of the local app: {unexplained}"
    for name, (package, literal, why) in ON_FIRST_EVENT.items():
        if name in missing:
            assert _defined_in_source(package, literal), (
                f"{name} ({why}): {literal} not in the installed {package}")


def test_overview_and_engine_panels_return_data(prometheus, traffic):
    specs = all_specs()
    results = check(prometheus, specs, VARIABLES)
    REPORT.write_text(report(results))
    print("\n" + REPORT.read_text())
    mine = [r for r in results if r.dashboard in MUST_HAVE_DATA]
    assert len({(r.dashboard, r.panel) for r in mine}) >= 14
    assert [r for r in mine if r.error] == []
    assert [r.panel for r in mine if not r.has_data] == [], REPORT.read_text()
    assert [r.panel for r in mine if r.nan] == [], "NaN/Inf in a panel"
    assert all(r.error == "" for r in results), [r.error for r in results if r.error]


def test_per_model_panels_split_by_model(prometheus, traffic):
    """The model filter and `by(model_name)` really separate the two models."""
    panel = next(p for p in all_specs()["llm-overview.json"].panels
                 if p.title == "Requests per second by model")
    expr = panel.queries[0].text
    both = instant_query(prometheus, substitute(expr, VARIABLES))
    assert {s["metric"]["model_name"] for s in both} == set(MODELS)
    one = instant_query(prometheus, substitute(expr, {**VARIABLES, "model": "tiny-chat"}))
    assert {s["metric"]["model_name"] for s in one} == {"tiny-chat"}


def test_template_variables_offer_the_local_cluster_and_models(prometheus, traffic):
    for spec in all_specs().values():
        for var in spec.variables:
            metric = str(var.query).split("{")[0]
            if m.source_of(metric) is not m.Source.RAY or metric.startswith(TENANT_PREFIX):
                continue
            selector = substitute(str(var.query), VARIABLES)
            r = httpx.get(f"{prometheus}/api/v1/series", params={"match[]": selector},
                          timeout=30).json()
            values = {s.get(var.label_name) for s in r["data"]}
            wanted = {"cluster": {CLUSTER}, "model": set(MODELS)}.get(var.name, set())
            assert wanted <= values, (spec.uid, var.name, values)
            assert values - {None}, (spec.uid, var.name)


def test_every_alert_expression_evaluates_on_the_scrape(prometheus, traffic):
    for alert in alerts():
        instant_query(prometheus, str(alert.expr))  # raises on a PromQL error
    llm = instant_query(prometheus, 'count(ray_serve_deployment_replica_healthy'
                                    '{deployment=~".*LLMServer:.*"})')
    assert llm and float(llm[0]["value"][1]) >= len(MODELS), "LLM deployment regex matches none"


def test_make_verify_prometheus_checks_pass_on_the_scrape(prometheus, traffic):
    """`make verify`'s Prometheus checks (tools/verify.py) against this real Prometheus: every
    target up, and the panels of the two dashboards the local app can fill return data (the GPU,
    Ray Serve and capacity dashboards need a cluster)."""
    assert verify.check_targets(prometheus).status == "PASS"
    specs = {k: v for k, v in all_specs().items() if k in MUST_HAVE_DATA}
    (result,) = verify.check_dashboards(prometheus, specs, VARIABLES)
    assert result.status == "PASS", result.detail

