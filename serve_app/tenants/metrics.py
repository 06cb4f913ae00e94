"""Per-key metering: Prometheus metrics labelled by key *name* (never the secret) and model.

Recorded with `ray.util.metrics`, which every Ray node exports on its metrics port (what the
PodMonitor scrapes) with the `ray_` prefix. Cardinality: one series per configured key x
model x outcome/reason. `Meter` itself records nothing (unit tests, no Ray).
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIX = "llm_platform_tenant_"
# Admission latency buckets, seconds: the target is 1 ms at p50, 3 ms at p99.
LATENCY_BOUNDARIES = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]


class Meter:
    def admission(self, key: str, model: str, seconds: float) -> None: ...
    def rejected(self, key: str, model: str, reason: str) -> None: ...
    def finished(self, key: str, model: str, outcome: str) -> None: ...
    def tokens(self, key: str, model: str, prompt: int, completion: int) -> None: ...
    def redis_unavailable(self, mode: str, admitted: bool | None) -> None: ...
    def budgets(self, rows: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        """Every (key, window) -> (used, limit) with a budget now; others are dropped."""


class RayMeter(Meter):
    def __init__(self) -> None:
        from ray.util import metrics

        from serve_app.held_gauge import HeldGauge

        km = ("key", "model")
        self._requests = metrics.Counter(
            PREFIX + "requests", "Requests of a key by outcome (ok, error, cancelled,"
            " rejected).", tag_keys=(*km, "outcome"))
        self._rejections = metrics.Counter(
            PREFIX + "rejections", "Requests refused by a limit, by reason.",
            tag_keys=(*km, "reason"))
        self._prompt = metrics.Counter(
            PREFIX + "prompt_tokens", "Prompt tokens of finished requests.", tag_keys=km)
        self._completion = metrics.Counter(
            PREFIX + "completion_tokens", "Completion tokens of finished requests.", tag_keys=km)
        self._latency = metrics.Histogram(
            PREFIX + "admission_seconds", "Time to admit a request (Redis round trip"
            " included).", boundaries=LATENCY_BOUNDARIES, tag_keys=km)
        self._no_redis = metrics.Counter(
            PREFIX + "redis_unavailable_decisions", "Admissions or settlements made without"
            " Redis, by failure mode and decision (admitted, refused, settlement_lost).",
            tag_keys=("mode", "decision"))
        # serve_app/tenants/usage.py sets these; window is `day` or `month`. Held: Ray drops a
        # gauge not set again within two export intervals (serve_app/held_gauge.py), and the
        # budgets are read every few seconds, or not at all while Redis is away.
        self._budget_used = HeldGauge(metrics.Gauge(
            PREFIX + "budget_used_tokens", "Tokens a key has used of its budget in the current"
            " UTC day or month (as counted in Redis: reservations settled to real usage).",
            tag_keys=("key", "window")))
        self._budget_limit = HeldGauge(metrics.Gauge(
            PREFIX + "budget_limit_tokens", "A key's token budget per UTC day or month"
            " (dailyTokens, monthlyTokens).", tag_keys=("key", "window")))

    def admission(self, key: str, model: str, seconds: float) -> None:
        self._latency.observe(seconds, {"key": key, "model": model})

    def rejected(self, key: str, model: str, reason: str) -> None:
        self._rejections.inc(1, {"key": key, "model": model, "reason": reason})
        self._requests.inc(1, {"key": key, "model": model, "outcome": "rejected"})

    def finished(self, key: str, model: str, outcome: str) -> None:
        self._requests.inc(1, {"key": key, "model": model, "outcome": outcome})

    def tokens(self, key: str, model: str, prompt: int, completion: int) -> None:
        tags = {"key": key, "model": model}
        if prompt:
            self._prompt.inc(prompt, tags)
        if completion:
            self._completion.inc(completion, tags)

    def redis_unavailable(self, mode: str, admitted: bool | None) -> None:
        decision = ("settlement_lost" if admitted is None
                    else "admitted" if admitted else "refused")
        self._no_redis.inc(1, {"mode": mode, "decision": decision})

    def budgets(self, rows: Mapping[tuple[str, str], tuple[int, int]]) -> None:
        tags = {kw: {"key": kw[0], "window": kw[1]} for kw in rows}
        self._budget_used.replace((tags[kw], used) for kw, (used, _) in rows.items())
        self._budget_limit.replace((tags[kw], limit) for kw, (_, limit) in rows.items())
