"""The RAG metrics can be created and recorded (Ray validates names, tags and boundaries at
creation: a bad one would fail every request that records it)."""

from __future__ import annotations

from serve_app.rag import metrics


def test_metrics_are_created_and_recorded_with_their_documented_names() -> None:
    created = metrics.metrics()
    names = {getattr(m, "gauge", m)._name for m in created.values()}  # HeldGauge wraps a Gauge
    doc = metrics.__doc__ or ""
    for name in names:
        assert f"ray_{name}" in doc, name  # every exported name is documented for dashboards
    metrics.observe_retrieval("search", 0.004, 0)
    metrics.observe_ingest(0.2, 0, 0)  # zero increments are skipped (Ray refuses them)
    metrics.observe_ingest(0.2, 3, 120)
    metrics.set_store_sizes([("alice", "vs_1", 3, 120), ("alice", "vs_2", 1, 10)])
    assert created["store_bytes"].held() == {(("tenant", "alice"),): 130.0}
    metrics.set_store_sizes([])  # alice deleted her stores: no longer held
    assert created["store_bytes"].held() == {}
    metrics.db_error("search")
    metrics.observe_rerank(0)  # skipped, as above
    metrics.observe_rerank(5)
