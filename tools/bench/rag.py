"""RAG storage bench on the real local PostgreSQL + pgvector (issue 18's performance targets).

    python -m tools.bench.rag [--chunks 100000] [--dims 384] [--queries 500]

With `--chunks` chunks of `--dims` dimensions in one store (the serve side's own schema and
search query: serve_app/rag/schema.py), it reports, embedding excluded throughout:
- ingestion: chunks written per second: a bulk load (COPY in batches of `--batch`, then the
  HNSW index built once, pgvector's advice for loading) counted with its index build; target
  >= 2,000/s. Also reported, each with `--live` chunks into the already indexed store (each
  row then walks the HNSW graph: the rate of a file added to a live store), to tell the write
  method from the index's upkeep: text COPY, row INSERTs (executemany), the gateway's own
  `VectorDB.attach` (binary COPY) with one file, and with two files at once; and the
  gateway's binary COPY into the table before the index exists;
- search: what one `search_sql` round trip adds to a request (p50 / p99 over `--queries`
  sequential queries, client-side wall time, top 5); target p99 <= 20 ms;
- recall@5 of the HNSW index (hnsw.ef_search as the gateway sets it) against exact search
  (numpy, cosine) on the same queries; target >= 0.95.

The vectors are unit-normalised points around 1,000 random centres (real embeddings cluster;
uniform noise in 384 dimensions has no neighbours worth finding), queries are fresh points from
the same mixture. Seeded: the same data every run. Prints one `RESULT` line to compare runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serve_app.rag import schema

TOP_K = 5
EF_SEARCH = 100  # serve_app/rag/config.py RagDatabase.hnsw_ef_search default
TARGETS = {"ingest_per_s": 2000.0, "search_p99_ms": 20.0, "recall_at_5": 0.95}


def mixture(n: int, dims: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """`n` unit vectors: a random centre each plus Gaussian noise."""
    picks = rng.integers(0, len(centres), size=n)
    points = centres[picks] + rng.normal(scale=0.35, size=(n, dims)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def vector_text(v: np.ndarray) -> str:
    """pgvector's text input, `[x,y,...]` (Python's float repr: exact and fast)."""
    return "[" + ",".join(map(str, v.tolist())) + "]"


async def _seed_store(conn: Any, files: int) -> None:
    """One store and its files (the chunks' foreign keys), as the gateway would have them."""
    now = int(time.time())
    await conn.execute(
        "INSERT INTO rag_vector_stores (id, tenant, name, embedder, created_at, last_active_at)"
        " VALUES ('vs_bench', 'bench', 'bench', 'bench-embedder', %s, %s)", (now, now))
    for f in range(files):
        fid = f"file-bench{f}"
        await conn.execute(
            "INSERT INTO rag_files (id, tenant, filename, purpose, bytes, content_sha256,"
            " content, created_at) VALUES (%s, 'bench', %s, 'assistants', 1, %s, %s, %s)",
            (fid, f"doc{f}.txt", f.to_bytes(32, "big"), b"x", now))
        await conn.execute(
            "INSERT INTO rag_vector_store_files (vector_store_id, file_id, status, chunking,"
            " created_at) VALUES ('vs_bench', %s, 'completed', '{}'::jsonb, %s)", (fid, now))


async def ingest(conn: Any, vectors: np.ndarray, per_file: int, batch: int,
                 first: int = 0) -> float:
    """COPY the chunks in batches (one transaction each); returns chunks per second. Chunk i
    is `vectors[i - first]` with content `chunk <i>`."""
    dims = vectors.shape[1]
    start = time.perf_counter()
    for lo in range(first, first + len(vectors), batch):
        async with conn.transaction(), conn.cursor().copy(
            "COPY rag_chunks (vector_store_id, file_id, chunk_index, content, dimensions,"
            " embedding) FROM STDIN"
        ) as copy:
            for i in range(lo, min(lo + batch, first + len(vectors))):
                await copy.write_row(("vs_bench", f"file-bench{i // per_file}",
                                      i % per_file, f"chunk {i}", dims,
                                      vector_text(vectors[i - first])))
    return len(vectors) / (time.perf_counter() - start)


async def insert_rows(conn: Any, vectors: np.ndarray, per_file: int, first: int) -> float:
    """The gateway's write path before COPY: one executemany of row INSERTs in one
    transaction (psycopg pipelines them); chunks per second."""
    dims = vectors.shape[1]
    start = time.perf_counter()
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO rag_chunks (vector_store_id, file_id, chunk_index, content, dimensions,"
            " embedding) VALUES (%s, %s, %s, %s, %s, %s::vector)",
            [("vs_bench", f"file-bench{i // per_file}", i % per_file, f"chunk {i}", dims,
              vector_text(vectors[i - first])) for i in range(first, first + len(vectors))],
        )
    return len(vectors) / (time.perf_counter() - start)


async def binary_copy(conn: Any, vectors: np.ndarray, first: int) -> float:
    """The gateway's binary COPY (serve_app/rag/store.py copy_chunks) of one file's chunks in
    one transaction, into whatever index state the table is in; chunks per second."""
    import serve_app.config  # noqa: F401  (first: serve_app.rag.config imports it back)
    from serve_app.rag.store import copy_chunks

    now = int(time.time())
    await conn.execute(
        "INSERT INTO rag_files (id, tenant, filename, purpose, bytes, content_sha256, content,"
        " created_at) VALUES ('file-binary', 'bench', 'binary.txt', 'assistants', 1,"
        " '\\xff'::bytea, '\\x00'::bytea, %s)", (now,))
    await conn.execute(
        "INSERT INTO rag_vector_store_files (vector_store_id, file_id, status, chunking,"
        " created_at) VALUES ('vs_bench', 'file-binary', 'completed', '{}'::jsonb, %s)", (now,))
    texts = [f"chunk {i}" for i in range(first, first + len(vectors))]
    start = time.perf_counter()
    async with conn.transaction():
        await copy_chunks(conn, "vs_bench", "file-binary", texts, vectors.tolist())
    return len(vectors) / (time.perf_counter() - start)


async def gateway_attach(dsn: str, vectors: np.ndarray, first: int, files: int = 1) -> float:
    """len(vectors) chunks attached by the gateway's own code (VectorDB.attach: one
    transaction per file, COPY, the store's limit check), split into `files` files attached
    concurrently (as `tools.ingest --concurrency` does), embedding excluded; chunks per second
    over all of them."""
    import serve_app.config  # noqa: F401  (first: serve_app.rag.config imports it back)
    from serve_app.rag.config import RagDatabase
    from serve_app.rag.store import VectorDB

    cfg = RagDatabase(migrateOnStart=False, poolMaxSize=max(2, files))
    db = VectorDB(cfg, environ={cfg.dsn_env_var: dsn})
    try:
        tenant, parts = "bench", np.array_split(np.arange(first, first + len(vectors)), files)
        ids = [(await db.create_file(tenant, f"attach{part[0]}.txt", "assistants",
                                     f"attach {part[0]}".encode()))["id"] for part in parts]
        await db.get_store(tenant, "vs_bench")  # the pool open, outside the timing

        async def attach(file_id: str, part: np.ndarray) -> None:
            await db.attach(tenant, "vs_bench", file_id, chunks=[f"chunk {i}" for i in part],
                            embeddings=vectors[part - first].tolist(), usage_bytes=1,
                            max_store_bytes=2**62, chunking={}, attributes={})

        start = time.perf_counter()
        await asyncio.gather(*(attach(f, p) for f, p in zip(ids, parts, strict=True)))
        return len(vectors) / (time.perf_counter() - start)
    finally:
        await db.close()


async def search(conn: Any, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    """The gateway's query per vector: wall times (ms) and the chunk indexes it returned."""
    sql = schema.search_sql(queries.shape[1])
    await conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        cur = await conn.execute(sql, {"query": vector_text(q), "stores": ["vs_bench"],
                                       "k": TOP_K})
        rows = await cur.fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        # content is `chunk <i>`: the chunk's index in `vectors`.
        found.append([int(r[5].split()[1]) for r in rows])
    return times, found


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = TOP_K) -> list[list[int]]:
    sims = queries @ vectors.T  # unit vectors: cosine similarity
    return [list(np.argsort(-row)[:k]) for row in sims]


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return hits / (len(exact) * TOP_K)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


async def run(dsn: str, chunks: int, dims: int, queries: int, batch: int,
              live: int) -> dict[str, float]:
    """Bulk load (COPY, then the HNSW index: pgvector's advice for loading), then `live` more
    chunks into the indexed table (the gateway's path for a file added to a live store)."""
    import psycopg

    rng = np.random.default_rng(18)
    centres = rng.normal(size=(1000, dims)).astype(np.float32)
    vectors = mixture(chunks + 5 * live, dims, rng, centres)
    qs = mixture(queries, dims, rng, centres)
    per_file = 1000
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await schema.migrate(conn)  # tables only: the index comes after the bulk load
        await _seed_store(conn, (chunks + 3 * live + per_file - 1) // per_file)
        bulk = await ingest(conn, vectors[:chunks], per_file, batch)
        print(f"bulk COPY: {chunks} chunks ({dims} dims) at {bulk:,.0f} chunks/s", flush=True)
        binary_rate = await binary_copy(conn, vectors[chunks:chunks + live], chunks)
        print(f"binary COPY (the gateway's, serve_app/rag/store.py) without the index: {live}"
              f" chunks at {binary_rate:,.0f} chunks/s", flush=True)
        first = chunks + live
        # The HNSW graph must fit maintenance_work_mem or the build slows down many times
        # (pgvector README, "Index Build Time").
        await conn.execute("SET maintenance_work_mem = '1GB'")
        t0 = time.perf_counter()
        await schema.ensure_hnsw_index(conn, dims)
        build_s = time.perf_counter() - t0
        print(f"HNSW index build: {build_s:.1f} s", flush=True)
        live_rate = await ingest(conn, vectors[first:first + live], per_file, batch,
                                 first=first)
        print(f"live COPY into the indexed store: {live} chunks at {live_rate:,.0f} chunks/s",
              flush=True)
        first += live
        insert_rate = await insert_rows(conn, vectors[first:first + live], per_file, first)
        print(f"live row INSERTs (executemany) into the indexed store: {live} chunks at"
              f" {insert_rate:,.0f} chunks/s", flush=True)
        first += live
        attach_rate = await gateway_attach(dsn, vectors[first:first + live], first)
        print(f"gateway attach (VectorDB.attach, one file of {live} chunks, indexed store):"
              f" {attach_rate:,.0f} chunks/s", flush=True)
        first += live
        parallel_rate = await gateway_attach(dsn, vectors[first:first + live], first, files=2)
        print(f"gateway attach, two files of {live // 2} chunks at once: {parallel_rate:,.0f}"
              " chunks/s", flush=True)
        await conn.execute("VACUUM ANALYZE rag_chunks")
        await search(conn, qs[:20])  # warm the index into shared buffers
        times, found = await search(conn, qs)
    exact = exact_top(vectors, qs)
    return {"bulk_copy_per_s": bulk, "index_build_s": build_s,
            "ingest_per_s": chunks / (chunks / bulk + build_s), "live_insert_per_s": live_rate,
            "live_row_insert_per_s": insert_rate, "gateway_attach_per_s": attach_rate,
            "gateway_attach_2_files_per_s": parallel_rate, "binary_copy_per_s": binary_rate,
            "search_p50_ms": statistics.median(times), "search_p99_ms": p99(times),
            "recall_at_5": recall(found, exact)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.rag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1000, help="chunks per COPY transaction")
    parser.add_argument("--live", type=int, default=2000,
                        help="chunks inserted after the index exists (live-store rate)")
    parser.add_argument("--dsn", help="an existing PostgreSQL + pgvector (default: start one)")
    args = parser.parse_args(argv)

    if args.dsn:
        result = asyncio.run(run(args.dsn, args.chunks, args.dims, args.queries, args.batch,
                                 args.live))
    else:
        from tools.local_pg import LocalPostgres

        tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
        try:
            with LocalPostgres(tmp / "data") as pg:
                result = asyncio.run(run(pg.dsn, args.chunks, args.dims, args.queries,
                                         args.batch, args.live))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    met = {
        "ingest_per_s": result["ingest_per_s"] >= TARGETS["ingest_per_s"],
        "search_p99_ms": result["search_p99_ms"] <= TARGETS["search_p99_ms"],
        "recall_at_5": result["recall_at_5"] >= TARGETS["recall_at_5"],
    }
    print(f"ingestion (bulk COPY + index build): {result['ingest_per_s']:,.0f} chunks/s "
          f"(target >= {TARGETS['ingest_per_s']:,.0f}); live into the index: "
          f"{result['live_insert_per_s']:,.0f} chunks/s")
    bulk = result["bulk_copy_per_s"]
    print("write paths (ratio to bulk COPY without the index): "
          + ", ".join(f"{name} {result[key]:,.0f}/s ({result[key] / bulk:.2f}x)" for name, key in (
              ("binary COPY without the index", "binary_copy_per_s"),
              ("live COPY", "live_insert_per_s"), ("live INSERT", "live_row_insert_per_s"),
              ("gateway attach", "gateway_attach_per_s"),
              ("gateway attach, 2 files at once", "gateway_attach_2_files_per_s"))))
    print(f"search: p50 {result['search_p50_ms']:.2f} ms, p99 {result['search_p99_ms']:.2f} ms"
          f" (target <= {TARGETS['search_p99_ms']:g})")
    print(f"recall@5 HNSW vs exact: {result['recall_at_5']:.3f} "
          f"(target >= {TARGETS['recall_at_5']})")
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in result.items())
          + " " + " ".join(f"{k}_met={'yes' if v else 'NO'}" for k, v in met.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
