"""tools/bench/rag.py's measuring parts: exact search and recall, on data with a known answer,
and one tiny run against the real local PostgreSQL + pgvector (the bench itself is `make bench`)."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.support.postgres import postgres  # noqa: F401  (a fixture)
from tools.bench.rag import exact_top, mixture, recall, run, vector_text


def test_exact_top_and_recall() -> None:
    vectors = np.eye(8, dtype=np.float32)
    queries = np.eye(8, dtype=np.float32)[:2]
    exact = exact_top(vectors, queries, k=5)
    assert [e[0] for e in exact] == [0, 1]
    assert recall(exact, exact) == 1.0
    half = [[*e[:2], 99, 98, 97] for e in exact]
    assert recall(half, exact) == 0.4


def test_mixture_is_unit_norm_and_vector_text_round_trips() -> None:
    rng = np.random.default_rng(0)
    pts = mixture(10, 4, rng, rng.normal(size=(3, 4)).astype(np.float32))
    assert np.allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-5)
    text = vector_text(pts[0])
    assert np.allclose(np.array(text.strip("[]").split(","), dtype=np.float32), pts[0])


def test_a_small_run_on_the_real_database(postgres) -> None:  # noqa: F811
    out = asyncio.run(run(postgres.dsn, chunks=300, dims=16, queries=20, batch=100, live=50))
    assert out["recall_at_5"] >= 0.9  # 300 points: HNSW is near exact
    assert out["ingest_per_s"] > 0 and out["search_p99_ms"] > 0
