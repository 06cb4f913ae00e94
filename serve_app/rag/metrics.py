"""RAG metrics (ray.util.metrics: exported by every Ray node's metrics port with a `ray_` prefix).

Prometheus names (what the dashboard row and alerts query):
  ray_llm_platform_rag_retrieval_seconds        histogram  {source: search|pipeline|file_search}
      embed-the-query excluded: the database search (+ rerank for pipelines)
  ray_llm_platform_rag_chunks_searched          histogram  {source}  chunks returned per search
  ray_llm_platform_rag_ingested_chunks_total    counter    chunks written (rate = ingestion rate)
  ray_llm_platform_rag_ingested_bytes_total     counter    file bytes ingested
  ray_llm_platform_rag_ingest_seconds           histogram  one file: extract + split + embed + write
  ray_llm_platform_rag_store_chunks             gauge      {tenant} chunks stored (every replica
  ray_llm_platform_rag_store_bytes              gauge      {tenant} bytes stored  reports: use max)
  ray_llm_platform_rag_db_errors_total          counter    {operation} database unreachable (503s)
  ray_llm_platform_rag_reranked_chunks_total    counter    chunks a pipeline's reranker scored
"""

from __future__ import annotations

from functools import cache
from typing import Any

_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
_COUNT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200]  # Ray refuses boundaries <= 0
_INGEST_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]


@cache
def metrics() -> dict[str, Any]:
    """Created once per replica process (Ray metrics must be created inside the actor)."""
    from ray.util.metrics import Counter, Gauge, Histogram

    from serve_app.held_gauge import HeldGauge

    return {
        "retrieval": Histogram(
            "llm_platform_rag_retrieval_seconds",
            description="Seconds of one vector search (plus rerank in pipelines), embedding"
            " of the query excluded.",
            boundaries=_LATENCY_BUCKETS, tag_keys=("source",),
        ),
        "chunks": Histogram(
            "llm_platform_rag_chunks_searched",
            description="Chunks one search returned.",
            boundaries=_COUNT_BUCKETS, tag_keys=("source",),
        ),
        "ingested_chunks": Counter(
            "llm_platform_rag_ingested_chunks_total", description="Chunks written to stores."
        ),
        "ingested_bytes": Counter(
            "llm_platform_rag_ingested_bytes_total", description="File bytes ingested."
        ),
        "ingest_seconds": Histogram(
            "llm_platform_rag_ingest_seconds",
            description="Seconds to ingest one file (extract, split, embed, write).",
            boundaries=_INGEST_BUCKETS,
        ),
        # Held: refreshed every 30 s, and Ray drops a gauge not set again within two export
        # intervals (10 s each by default; serve_app/held_gauge.py).
        "store_chunks": HeldGauge(Gauge(
            "llm_platform_rag_store_chunks", description="Chunks stored, per tenant.",
            tag_keys=("tenant",),
        )),
        "store_bytes": HeldGauge(Gauge(
            "llm_platform_rag_store_bytes", description="File bytes stored in vector stores,"
            " per tenant.", tag_keys=("tenant",),
        )),
        "db_errors": Counter(
            "llm_platform_rag_db_errors_total",
            description="Requests that failed because the database was unreachable.",
            tag_keys=("operation",),
        ),
        "reranked": Counter(
            "llm_platform_rag_reranked_chunks_total",
            description="Chunks scored by a pipeline's reranker (a score model).",
        ),
    }


def observe_retrieval(source: str, seconds: float, chunks: int) -> None:
    m = metrics()
    m["retrieval"].observe(seconds, tags={"source": source})
    m["chunks"].observe(chunks, tags={"source": source})


def observe_ingest(seconds: float, chunks: int, size: int) -> None:
    m = metrics()
    m["ingest_seconds"].observe(seconds)
    if chunks > 0:  # Ray's Counter.inc refuses 0
        m["ingested_chunks"].inc(chunks)
    if size > 0:
        m["ingested_bytes"].inc(size)


def observe_rerank(chunks: int) -> None:
    if chunks > 0:
        metrics()["reranked"].inc(chunks)


def db_error(operation: str) -> None:
    metrics()["db_errors"].inc(tags={"operation": operation})


def set_store_sizes(rows: list[tuple[str, str, int, int]]) -> None:
    """rows: (tenant, store id, chunks, bytes) of every store; summed per tenant. A tenant
    with no store left is no longer reported."""
    chunks: dict[str, int] = {}
    size: dict[str, int] = {}
    for tenant, _, n, b in rows:
        chunks[tenant] = chunks.get(tenant, 0) + n
        size[tenant] = size.get(tenant, 0) + b
    m = metrics()
    m["store_chunks"].replace(({"tenant": t}, n) for t, n in chunks.items())
    m["store_bytes"].replace(({"tenant": t}, b) for t, b in size.items())
