"""Canary auto-rollback and prefix-aware routing against one app of their own.

The app: `tiny-chat` with two replicas and `routing: prefixAffinity`; `tiny-bad`, whose every
request fails with a 500 (the fault hook LLM_PLATFORM_FAULT_ERROR_MODELS, set only in this
process's environment); alias `chat` 50/50 over them with a rollback rule; two ingress replicas,
so the verdict must reach both. It runs first (`e2e_order(-1)`), before the session app starts,
so the machine holds one app at a time.

Which replica served what is read from the replicas' own metrics (Ray's Prometheus endpoint,
LLM_PLATFORM_METRICS_PORT): Serve's per-replica request counter, and vLLM's prefix-cache hits
per replica.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import KEY_ADMIN, LOG_DIR, LocalApp, running_app
from tools.process import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.e2e_order(-1)]

RULE = {"maxErrorRatio": 0.2, "minRequests": 5, "windowS": 30}
SERVE_REQUESTS = "ray_serve_deployment_request_counter"  # the parser drops `_total`
EXPORT_INTERVAL_S = 1  # Ray's metrics_report_interval_ms for this app (default 10 s)


@pytest.fixture(scope="module")
def canary_app() -> Iterator[LocalApp]:
    from serve_app.local import local_serving_config

    data = local_serving_config().model_dump(mode="json", by_alias=True)
    stable, bad = data["models"]
    stable.update(routing="prefixAffinity")
    stable["autoscaling"].update(minReplicas=2, maxReplicas=2)
    bad.update(id="tiny-bad")
    data.update(
        appName="canary",
        aliases=[{"name": "chat", "rollback": RULE,
                  "targets": [{"model": "tiny-chat", "weight": 50},
                              {"model": "tiny-bad", "weight": 50}]}],
        ingress={"minReplicas": 2, "maxReplicas": 2, "cpusPerReplica": 0.5},
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    serving = LOG_DIR / "serving-canary.json"
    serving.write_text(json.dumps(data))
    env = dict(
        os.environ,
        PORT=str(free_port()),
        LLM_PLATFORM_SERVING_FILE=str(serving),
        LLM_PLATFORM_API_KEYS=f"admin:{KEY_ADMIN}",
        LLM_PLATFORM_METRICS_PORT=str(free_port()),
        LLM_PLATFORM_FAULT_ERROR_MODELS="tiny-bad",
        RAY_metrics_report_interval_ms=str(EXPORT_INTERVAL_S * 1000),
        LLM_PLATFORM_RAY_CPUS="12",  # logical: 2 ingress + 3 LLMServers + prefix-tree actor
        PYTHONUNBUFFERED="1",
    )
    with running_app(env, LOG_DIR / "local-canary.log") as app:
        yield app


def _samples(app: LocalApp, name: str, **labels: str) -> dict[str, float]:
    """Per replica: the summed value of metric `name` whose labels match `labels` (a value
    starting with `*` matches label values ending with the rest)."""
    text = httpx.get(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=30).text
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.removesuffix("_total") != name.removesuffix("_total"):
                continue
            if all(_matches(s.labels.get(k, ""), v) for k, v in labels.items()):
                out[s.labels.get("replica") or s.labels.get("ReplicaId", "")] += s.value
    return dict(out)


def _matches(value: str, want: str) -> bool:
    return value.endswith(want[1:]) if want.startswith("*") else value == want


def _settled(app: LocalApp, name: str, **labels: str) -> dict[str, float]:
    """Metric `name` once every request sent so far is exported (two equal reads)."""
    last = _samples(app, name, **labels)
    for _ in range(20):
        time.sleep(2 * EXPORT_INTERVAL_S)
        now = _samples(app, name, **labels)
        if now == last:
            return now
        last = now
    pytest.fail(f"{name} never settled: {last}")


def _wait_for_delta(app: LocalApp, before: dict[str, float], want: float, name: str,
                    timeout: float = 60, **labels: str) -> dict[str, float]:
    """Poll until metric `name` grew by `want` in total since `before` (Ray exports every few
    seconds); return the growth per replica."""
    deadline = time.monotonic() + timeout
    while True:
        now = _samples(app, name, **labels)
        delta = {k: v - before.get(k, 0.0) for k, v in now.items()}
        if sum(delta.values()) >= want or time.monotonic() > deadline:
            return delta
        time.sleep(2)


def _alias_card(app: LocalApp) -> dict:
    r = httpx.get(f"{app.base_url}/v1/models/chat", timeout=30,
                  headers={"Authorization": f"Bearer {KEY_ADMIN}"})
    r.raise_for_status()
    return r.json()["metadata"]["rollback"]


def test_failing_canary_is_rolled_back_within_the_window(canary_app):
    client = canary_app.client(max_retries=0, timeout=60)
    served: Counter[str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    rolled_back_after = None
    i = 0
    while time.monotonic() - started < RULE["windowS"]:
        try:
            r = client.completions.create(model="chat", prompt="Hi", max_tokens=2,
                                          user=f"caller-{i}")
            served[r.model] += 1
        except openai.InternalServerError as exc:
            failures.append(str(exc))
        i += 1
        if "tiny-bad" in _alias_card(canary_app)["rolledBack"]:
            rolled_back_after = time.monotonic() - started
            break
    print(f"canary rollback: {len(failures)} failed client requests of {i}, rolled back after"
          f" {rolled_back_after}s (window {RULE['windowS']}s); served before: {dict(served)}")
    assert rolled_back_after is not None, f"not rolled back in {RULE['windowS']}s: {failures}"
    # Every failure was the canary's (the stable target kept answering), and clients saw
    # about minRequests failures, plus what arrived before the next one-second flush.
    assert failures and all("tiny-bad" in f for f in failures), failures
    assert len(failures) <= 3 * RULE["minRequests"], len(failures)
    # Two ingress replicas answer /v1/models: each learns the verdict at its next flush to the
    # shared actor (about a second, longer on a loaded machine), so read until both have it.
    deadline = time.monotonic() + 30
    while True:
        card = _alias_card(canary_app)
        if "tiny-bad" in card["rolledBack"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert card["stable"] == "tiny-chat" and card["rule"]["maxErrorRatio"] == 0.2
    assert card["rolledBack"]["tiny-bad"]["errorRatio"] > 0.2

    # Every caller, including those who had the canary, now gets the stable target, through
    # both ingress replicas (the verdict is shared, not per replica).
    # Both replicas have the verdict once several reads in a row show it (each read reaches
    # either replica); a flush is about a second, longer on a loaded machine.
    deadline, agreeing = time.monotonic() + 30, 0
    while agreeing < 8 and time.monotonic() < deadline:
        agreeing = agreeing + 1 if "tiny-bad" in _alias_card(canary_app)["rolledBack"] else 0
        time.sleep(0.25)
    ingress_before = _settled(canary_app, SERVE_REQUESTS, deployment="GatewayIngress")
    after = Counter()
    for j in range(i + 20):
        after[client.completions.create(model="chat", prompt="Hi", max_tokens=2,
                                        user=f"caller-{j}").model] += 1
    assert after == {"tiny-chat": i + 20}, after
    per_ingress = _wait_for_delta(canary_app, ingress_before, i + 20, SERVE_REQUESTS,
                                  deployment="GatewayIngress")
    print(f"after the rollback: requests per ingress replica {per_ingress}")
    assert len([v for v in per_ingress.values() if v > 0]) == 2, per_ingress

    # The gauge behind the LLMCanaryRolledBack alert.
    deadline = time.monotonic() + 60
    while True:
        gauge = _samples(canary_app, "ray_llm_platform_alias_rolled_back", alias="chat",
                         target="tiny-bad")
        if (gauge and max(gauge.values()) == 1) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert gauge and max(gauge.values()) == 1, gauge


def _complete(client, prompt: str) -> None:
    client.completions.create(model="tiny-chat", prompt=prompt, max_tokens=2)


def test_shared_prefix_lands_on_one_replica_and_other_prompts_spread(canary_app):
    client = canary_app.client(max_retries=0, timeout=60)
    llm = {"deployment": "*LLMServer:tiny-chat"}
    n = 10
    # ~230 tokens of the tiny tokenizer: vLLM's CPU backend caches whole 128-token blocks
    # (vllm/platforms/cpu.py), so a shorter prefix would never hit the cache.
    prefix = "You are the llm-platform assistant; answer briefly and politely. " * 12

    before = _settled(canary_app, SERVE_REQUESTS, **llm)
    hits_before = _samples(canary_app, "ray_vllm_prefix_cache_hits", model_name="tiny-chat")
    for i in range(n):  # one at a time: load stays balanced, so the prefix decides
        _complete(client, f"{prefix}Question {i}: what is {i} + {i}?")
    shared = _wait_for_delta(canary_app, before, n, SERVE_REQUESTS, **llm)
    hits = _wait_for_delta(canary_app, hits_before, 1, "ray_vllm_prefix_cache_hits",
                           model_name="tiny-chat")
    print(f"shared prefix: requests per replica {shared}; prefix-cache hit tokens {hits}")
    assert sorted(shared.values(), reverse=True)[:2] in ([n, 0], [n]), shared
    # The replica that got them reused the prefix from its KV cache (vLLM's own counter; Serve's
    # `replica` and vLLM's `ReplicaId` are the same id); the other one had nothing to reuse.
    (chosen,) = [r for r, v in shared.items() if v == n]
    assert hits.get(chosen, 0) > 0, hits
    assert all(v == 0 for r, v in hits.items() if r != chosen), hits

    before = _settled(canary_app, SERVE_REQUESTS, **llm)
    m = 20
    for _ in range(m):  # unrelated prompts: no prefix to follow, the router balances
        _complete(client, secrets.token_hex(100))  # ~200 tokens, ~200 characters each
    spread = _wait_for_delta(canary_app, before, m, SERVE_REQUESTS, **llm)
    print(f"unrelated prompts: requests per replica {spread}")
    scrape = httpx.get(f"http://127.0.0.1:{canary_app.metrics_port}/metrics", timeout=30).text
    (LOG_DIR / "canary-metrics.txt").write_text(scrape)  # for the record
    assert len(spread) == 2 and min(spread.values()) >= m // 5, spread
