"""Typed PromQL helpers on Grafana's `promql-builder` (an expression tree, not pasted strings).

Every query of every panel and alert is composed from these few functions, so the guards
against an idle system live in one place:
- `ratio()` divides by `clamp_min(den, EPSILON)`: 0/0 on an idle system is 0, never NaN/Inf;
  a numerator with no series at all (an error counter never incremented) falls back to
  `den * 0`, so the ratio still shows 0 instead of "No data".
- `quantile()` returns a series only where its histogram saw observations in the window:
  `histogram_quantile` over all-zero buckets is NaN, which Grafana draws as a gap and an
  alert would compare as false without saying why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeAlias

from promql_builder.builders import promql as pb
from promql_builder.cog.builder import Builder

Expr: TypeAlias = Builder[Any]

RATE_INTERVAL = "$__rate_interval"  # Grafana's window: >= 4 scrape intervals, tracks the step
EPSILON = 1e-9  # divisor floor: far below any real request rate


def sel(
    metric: str,
    eq: Mapping[str, str] | None = None,
    regex: Mapping[str, str] | None = None,
    neq: Mapping[str, str] | None = None,
) -> pb.VectorExpr:
    """`metric{k="v", k=~"re", k!="v"}` (labels in the order given: eq, regex, neq)."""
    v = pb.vector(metric)
    for name, value in (eq or {}).items():
        v.label(name, value)
    for name, value in (regex or {}).items():
        v.label_match_regexp(name, value)
    for name, value in (neq or {}).items():
        v.label_neq(name, value)
    return v


def num(value: float) -> pb.NumberLiteralExpr:
    return pb.n(value)


def rate(v: pb.VectorExpr, window: str = RATE_INTERVAL) -> pb.FuncCallExpr:
    """Per-second rate of a counter (`v` is a fresh selector; the range is set here)."""
    return pb.rate(v.range(window))


def increase(v: pb.VectorExpr, window: str) -> pb.FuncCallExpr:
    return pb.increase(v.range(window))


def _agg(fn: Any, expr: Expr, by: Iterable[str]) -> pb.AggregationExpr:
    labels = list(by)
    out = fn(expr)
    return out.by(labels) if labels else out


def sum_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    return _agg(pb.sum, expr, by)


def max_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    return _agg(pb.max, expr, by)


def min_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    return _agg(pb.min, expr, by)


def avg_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    return _agg(pb.avg, expr, by)


def group_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    """`group by(...)`: 1 per label set, whatever the values (a presence marker)."""
    return _agg(pb.group, expr, by)


def count_by(expr: Expr, *by: str) -> pb.AggregationExpr:
    return _agg(pb.count, expr, by)


def ratio(num_expr: Expr, den_expr: Expr) -> pb.BinaryExpr:
    """`(num or den * 0) / clamp_min(den, EPSILON)`: 0 (not NaN, not "No data") when idle.

    `den` appears twice; builders are only read once composed, so sharing the subtree is safe.
    """
    top = pb.or_val(num_expr, pb.mul(den_expr, pb.n(0)))
    return pb.div(top, pb.clamp_min(den_expr, EPSILON))


def zero_if_absent(expr: Expr, like: Expr) -> pb.BinaryExpr:
    """`expr or like * 0`: a counter Ray exports only after its first increment (preemptions,
    errors) reads 0 for every label set of `like` (a series that always exists) until then."""
    return pb.or_val(expr, pb.mul(like, pb.n(0)))


def or_zero(expr: Expr) -> pb.BinaryExpr:
    """`expr or vector(0)`: only for results without labels (a single number)."""
    return pb.or_val(expr, pb.vect(0))


def quantile(
    phi: float,
    bucket_metric: str,
    by: Iterable[str] = (),
    eq: Mapping[str, str] | None = None,
    regex: Mapping[str, str] | None = None,
    window: str = RATE_INTERVAL,
) -> pb.BinaryExpr:
    """`histogram_quantile(phi, sum by(le, ...)(rate(x_bucket[w])))`, only where `x_count`
    rose in the window (no NaN on an idle system)."""
    if not bucket_metric.endswith("_bucket"):
        raise ValueError(f"{bucket_metric}: a histogram quantile needs the _bucket series")
    labels = list(by)
    q = pb.histogram_quantile(
        phi, sum_by(rate(sel(bucket_metric, eq, regex), window), "le", *labels)
    )
    count = bucket_metric.removesuffix("_bucket") + "_count"
    seen = pb.gt(sum_by(rate(sel(count, eq, regex), window), *labels), pb.n(0))
    return _match(pb.and_val(q, seen), labels or None)


def eq(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.eq(a, b)


def gt(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.gt(a, b)


def lt(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.lt(a, b)


def gte(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.gte(a, b)


def add(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.add(a, b)


def mul(
    a: Expr, b: Expr, on: Iterable[str] | None = None, group_left: bool = False
) -> pb.BinaryExpr:
    """`a * b`; `on`/`group_left` to join a many-side `a` to a one-side `b`."""
    out = _match(pb.mul(a, b), on)
    return out.group_left([]) if group_left else out


def over_time(fn: str, expr: Expr, window: str, step: str) -> pb.FuncCallExpr:
    """`fn((expr)[window:step])`, e.g. a sum over a range of an instant expression."""
    return func(fn, pb.subquery(expr).range(window).resolution(step))


def div(a: Expr, b: Expr) -> pb.BinaryExpr:
    """Plain division: only where the divisor can never be 0 (use `ratio()` otherwise)."""
    return pb.div(a, b)


def sub(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.sub(a, b)


def _match(out: pb.BinaryExpr, on: Iterable[str] | None) -> pb.BinaryExpr:
    """`on(labels)`; `on=()` gives `on()` (match ignoring all labels, e.g. against a total).
    promql-builder renders an empty list as a bare `on`, so `on()` is asked for as `[""]`."""
    if on is None:
        return out
    labels = list(on)
    return out.on(labels or [""])


def and_(a: Expr, b: Expr, on: Iterable[str] | None = None) -> pb.BinaryExpr:
    return _match(pb.and_val(a, b), on)


def or_(a: Expr, b: Expr) -> pb.BinaryExpr:
    return pb.or_val(a, b)


def unless(a: Expr, b: Expr, on: Iterable[str] | None = None) -> pb.BinaryExpr:
    return _match(pb.unless(a, b), on)


def func(name: str, *args: Expr) -> pb.FuncCallExpr:
    """Any PromQL function by name (the builder has one per function; this keeps call sites
    uniform for the few used here: absent, changes, time, ...)."""
    out = pb.FuncCallExpr().function(name)
    for a in args:
        out.arg(a)
    return out


def label_set(expr: Expr, label: str, value: str) -> pb.FuncCallExpr:
    """`label_replace(expr, "label", "value", "", "")`: add a constant label.
    (promql-builder prints string literals unquoted: quote them here.)"""
    return func("label_replace", expr, *(pb.s(json.dumps(x)) for x in (label, value, "", "")))


def label_copy(expr: Expr, dst: str, src: str) -> pb.FuncCallExpr:
    """`label_replace(expr, "dst", "$1", "src", "(.*)")`: copy a label under another name."""
    return func("label_replace", expr, *(pb.s(json.dumps(x)) for x in (dst, "$1", src, "(.*)")))


def metric_names(expr: Expr | Any) -> set[str]:
    """Every metric name selected anywhere in `expr` (walks the built expression tree)."""
    return {m for m in _walk(expr.build() if isinstance(expr, Builder) else expr)}


def _walk(node: Any) -> Iterator[str]:
    if getattr(node, "type_val", None) == "vectorExpr":
        yield node.metric
        return
    for key in ("expr", "param", "left", "right"):
        child = getattr(node, key, None)
        if child is not None:
            yield from _walk(child)
    for child in getattr(node, "args", None) or []:
        yield from _walk(child)
