"""VectorDB (serve_app/rag/store.py) against a real PostgreSQL + pgvector: tenancy, dedup,
idempotent attach, cascade deletes, limits and the database-down path. Vectors here are
hand-made; the real embedder is exercised by tests/e2e/test_rag.py."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from serve_app.errors import GatewayError
from serve_app.rag.config import RagDatabase
from serve_app.rag.store import Page, VectorDB
from tests.support.postgres import temporary_postgres

CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 800,
                                          "chunk_overlap_tokens": 400}}


def _db(dsn: str) -> VectorDB:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    env = {"RAG_TEST_DSN": dsn.rsplit("/", 1)[0] + "/" + name}
    return VectorDB(RagDatabase(dsn_env_var="RAG_TEST_DSN", connect_timeout_s=2), env)


async def _attach(db: VectorDB, tenant: str, store: str, file_id: str, vectors, **kw) -> bool:
    return await db.attach(
        tenant, store, file_id, chunks=[f"chunk {i}" for i in range(len(vectors))],
        embeddings=vectors, usage_bytes=kw.pop("usage_bytes", 10),
        max_store_bytes=kw.pop("max_store_bytes", 1000), chunking=CHUNKING, attributes={},
    )


def test_tenancy_dedup_attach_search_delete(postgres) -> None:
    async def run() -> None:
        db = _db(postgres.dsn)
        try:
            a = await db.create_file("alice", "a.txt", "assistants", b"alpha")
            again = await db.create_file("alice", "a2.txt", "assistants", b"alpha")
            assert again["id"] == a["id"]  # same bytes, same tenant: stored once
            b = await db.create_file("bob", "a.txt", "assistants", b"alpha")
            assert b["id"] != a["id"]  # another tenant's copy is its own
            store = await db.create_store("alice", "s", {}, "emb")
            assert await _attach(db, "alice", store, a["id"], [[1, 0, 0], [0, 1, 0]])
            assert not await _attach(db, "alice", store, a["id"], [[1, 0, 0], [0, 1, 0]])
            assert await db.chunk_count("alice", store) == 2
            hits = await db.search("alice", [store], [0.9, 0.1, 0], 2, 40)
            assert [h.chunk_index for h in hits] == [0, 1] and hits[0].score > hits[1].score
            assert hits[0].filename == "a.txt"
            shared = await db.search(None, [store], [0.9, 0.1, 0], 1, 40)  # config-named
            assert [h.chunk_index for h in shared] == [0]
            for call in (db.get_store("bob", store), db.search("bob", [store], [1, 0, 0], 1, 40),
                         db.get_file("bob", a["id"]), db.detach("bob", store, a["id"])):
                with pytest.raises(GatewayError) as info:
                    await call
                assert info.value.status == 404
            assert await db.list_stores("bob", Page()) == []
            listed = await db.list_stores("alice", Page())
            assert listed[0]["file_counts"]["completed"] == 1 and listed[0]["usage_bytes"] == 10
            assert await db.detach("alice", store, a["id"]) == 2
            assert await db.chunk_count("alice", store) == 0
            await db.delete_store("alice", store)
            with pytest.raises(GatewayError):
                await db.get_store("alice", store)
        finally:
            await db.close()

    asyncio.run(run())


def test_store_limit_is_checked_in_the_transaction(postgres) -> None:
    async def run() -> None:
        db = _db(postgres.dsn)
        try:
            store = await db.create_store("t", None, {}, "emb")
            f1 = await db.create_file("t", "1.txt", "assistants", b"one")
            f2 = await db.create_file("t", "2.txt", "assistants", b"two")
            await _attach(db, "t", store, f1["id"], [[1.0, 0.0]], usage_bytes=60,
                          max_store_bytes=100)
            with pytest.raises(GatewayError) as info:
                await _attach(db, "t", store, f2["id"], [[0.0, 1.0]], usage_bytes=60,
                              max_store_bytes=100)
            assert info.value.status == 400 and "maxStoreBytes" in info.value.message
            assert await db.chunk_count("t", store) == 1  # nothing of the refused file
        finally:
            await db.close()

    asyncio.run(run())


def test_concurrent_attaches_keep_the_store_limit(postgres) -> None:
    """Attaches to one store run at once (the limit check is their serialised tail): of three
    60-byte files under a 130-byte limit exactly two get in, with their chunks only; the same
    file attached twice at once is written once."""
    async def run() -> None:
        db = _db(postgres.dsn)
        try:
            store = await db.create_store("t", None, {}, "emb")
            files = [(await db.create_file("t", f"{i}.txt", "assistants", b"%d" % i))["id"]
                     for i in range(3)]
            results = await asyncio.gather(
                *(_attach(db, "t", store, f, [[1.0, float(i)]] * 3, usage_bytes=60,
                          max_store_bytes=130) for i, f in enumerate(files)),
                return_exceptions=True)
            refused = [r for r in results if isinstance(r, GatewayError)]
            assert len(refused) == 1 and refused[0].code == "vector_store_full", results
            assert results.count(True) == 2
            assert await db.chunk_count("t", store) == 6
            assert (await db.get_store("t", store))["usage_bytes"] == 120
            extra = (await db.create_file("t", "x.txt", "assistants", b"x"))["id"]
            twice = await asyncio.gather(*(_attach(db, "t", store, extra, [[0.0, 1.0]] * 2,
                                                   usage_bytes=1, max_store_bytes=130)
                                           for _ in range(2)))
            assert sorted(twice) == [False, True]
            assert await db.chunk_count("t", store) == 8
        finally:
            await db.close()

    asyncio.run(run())


def test_database_down_is_a_503_and_recovers() -> None:
    async def run(pg) -> None:
        db = _db(pg.dsn)
        try:
            await db.create_store("t", None, {}, "emb")
            pg.stop("immediate")
            with pytest.raises(GatewayError) as info:
                await db.list_stores("t", Page())
            assert info.value.status == 503 and info.value.code == "database_unavailable"
            pg.start()
            assert len(await db.list_stores("t", Page())) == 1  # the pool reconnects
        finally:
            await db.close()

    with temporary_postgres() as pg:
        asyncio.run(run(pg))


def test_missing_dsn_is_a_503_not_a_crash() -> None:
    async def run() -> None:
        db = VectorDB(RagDatabase(dsn_env_var="RAG_UNSET_DSN"), {})
        with pytest.raises(GatewayError) as info:
            await db.list_stores("t", Page())
        assert info.value.status == 503

    asyncio.run(run())
