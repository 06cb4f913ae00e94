"""Vector stores and files in PostgreSQL + pgvector: every query the gateway runs.

Each row belongs to a tenant (the API key's name); every read and write filters by it, so a
store of another key is indistinguishable from a missing one (404). Every write is one
transaction: a failure (database down mid-request included) leaves nothing half-written.
Driver/pool errors that mean "database unreachable" become an OpenAI-style 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from serve_app.errors import GatewayError
from serve_app.rag import schema
from serve_app.rag.aws_secret import credentials_for
from serve_app.rag.config import RagDatabase

logger = logging.getLogger("ray.serve")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def db_unavailable(exc: BaseException | None = None) -> GatewayError:
    return GatewayError(
        503,
        "The vector store database is unavailable; nothing was changed. Retry later.",
        code="database_unavailable",
    )


def not_found(kind: str, ident: str, param: str) -> GatewayError:
    return GatewayError(404, f"No {kind} found with id '{ident}'.", param=param,
                        code="not_found")


@dataclass(frozen=True)
class ChunkHit:
    chunk_id: int
    vector_store_id: str
    file_id: str
    filename: str
    chunk_index: int
    content: str
    score: float  # cosine similarity of the vector search
    attributes: dict[str, Any]
    rerank_score: float | None = None  # the pipeline's reranker's, when it has one


class VectorDB:
    """An async connection pool plus the schema's queries. Opened lazily on first use (in the
    replica's event loop); a failed open is retried by the next request."""

    def __init__(self, cfg: RagDatabase, environ: dict[str, str] | None = None) -> None:
        self._cfg = cfg
        self._environ = os.environ if environ is None else environ
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._indexed_dims: set[int] = set()

    async def _open(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is not None:
                return self._pool
            dsn = self._environ.get(self._cfg.dsn_env_var, "")
            if not dsn:
                logger.error("RAG: %s (the database DSN) is not set", self._cfg.dsn_env_var)
                raise db_unavailable()
            from psycopg_pool import AsyncConnectionPool

            credentials = credentials_for(dsn, self._environ)

            async def conninfo() -> str:
                # Per new connection, on AWS: a fresh IAM token (or the rotating secret's
                # password; serve_app/rag/aws_secret.py), off the event loop.
                assert credentials is not None
                return await asyncio.to_thread(credentials)

            pool = AsyncConnectionPool(
                conninfo if credentials else dsn,
                min_size=self._cfg.pool_min_size,
                max_size=self._cfg.pool_max_size,
                timeout=self._cfg.connect_timeout_s,
                # A connection that died with the server is found before use, not mid-request.
                check=AsyncConnectionPool.check_connection,
                kwargs={
                    "connect_timeout": max(1, int(self._cfg.connect_timeout_s)),
                    "options": f"-c statement_timeout={self._cfg.statement_timeout_ms}",
                },
                open=False,
                name="rag",
            )
            try:
                await pool.open(wait=False)
                if self._cfg.migrate_on_start:
                    async with pool.connection() as conn:
                        await schema.migrate(conn)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            return pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled connection; unreachable database -> 503 (the transaction is rolled back)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            pool = await self._open()
            async with pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, OSError) as exc:
            logger.warning("RAG database unavailable: %s: %s", type(exc).__name__, exc)
            raise db_unavailable(exc) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ensure_index(self, conn: Any, dimensions: int) -> None:
        if dimensions not in self._indexed_dims:
            await schema.ensure_hnsw_index(conn, dimensions)
            self._indexed_dims.add(dimensions)

    # ---- files ---------------------------------------------------------------------------

    async def create_file(
        self, tenant: str, filename: str, purpose: str, data: bytes
    ) -> dict[str, Any]:
        """Store an upload; the same bytes from the same tenant return the first file."""
        digest = hashlib.sha256(data).digest()
        now = int(time.time())
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO rag_files (id, tenant, filename, purpose, bytes, content_sha256,"
                " content, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, content_sha256) DO NOTHING RETURNING id",
                (new_id("file-"), tenant, filename, purpose, len(data), digest, data, now),
            )
            if await cur.fetchone() is None:
                logger.info("RAG: duplicate upload of %s by %s: existing file kept", filename,
                            tenant)
            cur = await conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM rag_files WHERE tenant = %s AND content_sha256 = %s",
                (tenant, digest),
            )
            return _file_row(await cur.fetchone())

    async def get_file(self, tenant: str, file_id: str) -> dict[str, Any]:
        async with self.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FILE_COLUMNS} FROM rag_files WHERE tenant = %s AND id = %s",
                (tenant, file_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise not_found("file", file_id, "file_id")
        return _file_row(row)

    async def file_content(self, tenant: str, file_id: str) -> tuple[str, bytes]:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT filename, content FROM rag_files WHERE tenant = %s AND id = %s",
                (tenant, file_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise not_found("file", file_id, "file_id")
        return row[0], bytes(row[1])

    async def list_files(self, tenant: str, page: Page) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cur = await conn.execute(*page.sql(
                f"SELECT {_FILE_COLUMNS} FROM rag_files WHERE tenant = %s", [tenant], "rag_files"
            ))
            return [_file_row(r) for r in await cur.fetchall()]

    async def delete_file(self, tenant: str, file_id: str) -> None:
        """Delete a file and, by cascade, its attachments and every chunk made from it."""
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM rag_files WHERE tenant = %s AND id = %s RETURNING id",
                (tenant, file_id),
            )
            if await cur.fetchone() is None:
                raise not_found("file", file_id, "file_id")

    # ---- vector stores -------------------------------------------------------------------

    async def create_store(
        self, tenant: str, name: str | None, metadata: dict[str, str], embedder: str
    ) -> str:
        now = int(time.time())
        store_id = new_id("vs_")
        async with self.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO rag_vector_stores (id, tenant, name, metadata, embedder, created_at,"
                " last_active_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (store_id, tenant, name, json.dumps(metadata), embedder, now, now),
            )
        return store_id

    async def get_store(self, tenant: str, store_id: str) -> dict[str, Any]:
        async with self.connection() as conn:
            rows = await _stores(conn, "s.tenant = %s AND s.id = %s", [tenant, store_id])
        if not rows:
            raise not_found("vector store", store_id, "vector_store_id")
        return rows[0]

    async def list_stores(self, tenant: str, page: Page) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            return await _stores(conn, "s.tenant = %s", [tenant], page)

    async def tenant_store_ids(self, tenant: str) -> list[str]:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM rag_vector_stores WHERE tenant = %s ORDER BY created_at", (tenant,)
            )
            return [r[0] for r in await cur.fetchall()]

    async def update_store(
        self, tenant: str, store_id: str, name: str | None, metadata: dict[str, str] | None
    ) -> None:
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE rag_vector_stores SET name = COALESCE(%s, name),"
                " metadata = COALESCE(%s::jsonb, metadata) WHERE tenant = %s AND id = %s"
                " RETURNING id",
                (name, None if metadata is None else json.dumps(metadata), tenant, store_id),
            )
            if await cur.fetchone() is None:
                raise not_found("vector store", store_id, "vector_store_id")

    async def delete_store(self, tenant: str, store_id: str) -> None:
        """Delete a store with its attachments and chunks (cascade); its files stay uploaded."""
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM rag_vector_stores WHERE tenant = %s AND id = %s RETURNING id",
                (tenant, store_id),
            )
            if await cur.fetchone() is None:
                raise not_found("vector store", store_id, "vector_store_id")

    # ---- store files ---------------------------------------------------------------------

    async def store_file(self, tenant: str, store_id: str, file_id: str) -> dict[str, Any] | None:
        async with self.connection() as conn:
            rows = await _store_files(
                conn, "s.tenant = %s AND vf.vector_store_id = %s AND vf.file_id = %s",
                [tenant, store_id, file_id],
            )
        return rows[0] if rows else None

    async def list_store_files(
        self, tenant: str, store_id: str, page: Page, status: str | None
    ) -> list[dict[str, Any]]:
        await self.get_store(tenant, store_id)
        where, params = "s.tenant = %s AND vf.vector_store_id = %s", [tenant, store_id]
        if status:
            where, params = where + " AND vf.status = %s", [*params, status]
        async with self.connection() as conn:
            return await _store_files(conn, where, params, page)

    async def attach(
        self,
        tenant: str,
        store_id: str,
        file_id: str,
        *,
        chunks: list[str],
        embeddings: list[list[float]],
        usage_bytes: int,
        max_store_bytes: int,
        chunking: dict[str, Any],
        attributes: dict[str, Any],
    ) -> bool:
        """Insert the attachment and all its chunks in one transaction; False if the file was
        already attached (idempotent: nothing is written twice).

        Attaches of different files to one store run in parallel: the slow part (the COPY, whose
        cost is mostly the HNSW index's upkeep: docs/performance.md) holds no lock that another
        attach waits for. Only the tail, the store's byte limit check, is serialised by a row
        lock on the store, taken after the COPY and held to the commit; each attach sees the
        bytes of every attach committed before it, so the limit holds in every order."""
        dims = len(embeddings[0])
        now = int(time.time())
        async with self.connection() as conn:
            await self.ensure_index(conn, dims)
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT id FROM rag_vector_stores WHERE tenant = %s AND id = %s",
                    (tenant, store_id),
                )
                if await cur.fetchone() is None:
                    raise not_found("vector store", store_id, "vector_store_id")
                await conn.execute(
                    "DELETE FROM rag_vector_store_files WHERE vector_store_id = %s"
                    " AND file_id = %s AND status <> 'completed'",
                    (store_id, file_id),
                )
                # The attachment row first (the chunks' foreign key): it also keeps the store
                # from being deleted under us (KEY SHARE). A concurrent attach of the same file
                # waits here for the first to commit, then writes nothing.
                cur = await conn.execute(
                    "INSERT INTO rag_vector_store_files (vector_store_id, file_id, status,"
                    " usage_bytes, chunking, attributes, created_at)"
                    " VALUES (%s, %s, 'completed', %s, %s, %s, %s)"
                    " ON CONFLICT (vector_store_id, file_id) DO NOTHING RETURNING file_id",
                    (store_id, file_id, usage_bytes, json.dumps(chunking),
                     json.dumps(attributes), now),
                )
                if await cur.fetchone() is None:
                    return False
                await copy_chunks(conn, store_id, file_id, chunks, embeddings)
                # NO KEY UPDATE: conflicts with itself (the tails run one at a time) but not
                # with the KEY SHARE locks of other attaches' inserts.
                await conn.execute(
                    "SELECT id FROM rag_vector_stores WHERE id = %s FOR NO KEY UPDATE",
                    (store_id,),
                )
                cur = await conn.execute(
                    "SELECT COALESCE(sum(usage_bytes), 0) FROM rag_vector_store_files"
                    " WHERE vector_store_id = %s",
                    (store_id,),
                )
                used = (await cur.fetchone())[0]  # ours included
                if used > max_store_bytes:
                    raise GatewayError(
                        400,
                        f"Vector store {store_id} would hold {used} bytes, over its"
                        f" limit of {max_store_bytes} (rag.limits.maxStoreBytes).",
                        param="file_id",
                        code="vector_store_full",
                    )
                await conn.execute(
                    "UPDATE rag_vector_stores SET last_active_at = %s WHERE id = %s",
                    (now, store_id),
                )
        return True

    async def detach(self, tenant: str, store_id: str, file_id: str) -> int:
        """Remove a file from a store with every chunk of it; returns the chunks removed."""
        async with self.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT count(*) FROM rag_chunks c JOIN rag_vector_stores s"
                " ON s.id = c.vector_store_id WHERE s.tenant = %s AND c.vector_store_id = %s"
                " AND c.file_id = %s",
                (tenant, store_id, file_id),
            )
            removed = (await cur.fetchone())[0]
            cur = await conn.execute(
                "DELETE FROM rag_vector_store_files vf USING rag_vector_stores s"
                " WHERE s.id = vf.vector_store_id AND s.tenant = %s"
                " AND vf.vector_store_id = %s AND vf.file_id = %s RETURNING vf.file_id",
                (tenant, store_id, file_id),
            )
            if await cur.fetchone() is None:
                raise not_found("file", file_id, "file_id")
        return removed

    async def chunk_count(self, tenant: str, store_id: str) -> int:
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM rag_chunks c JOIN rag_vector_stores s"
                " ON s.id = c.vector_store_id WHERE s.tenant = %s AND s.id = %s",
                (tenant, store_id),
            )
            return (await cur.fetchone())[0]

    # ---- search --------------------------------------------------------------------------

    async def search(
        self, tenant: str | None, store_ids: list[str], vector: list[float], k: int,
        ef_search: int,
    ) -> list[ChunkHit]:
        """The k chunks nearest to `vector` (cosine) over the tenant's given stores. Tenant None:
        stores named by the platform's config (a pipeline's vectorStoreIds), whoever owns them."""
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM rag_vector_stores WHERE (%s::text IS NULL OR tenant = %s)"
                " AND id = ANY(%s)",
                (tenant, tenant, store_ids),
            )
            owned = {r[0] for r in await cur.fetchall()}
            missing = [s for s in store_ids if s not in owned]
            if missing:
                raise not_found("vector store", missing[0], "vector_store_id")
            async with conn.transaction():
                # SET LOCAL: for this search's transaction only (pgvector README, "Query
                # options"); iterative scans keep filtered HNSW searches from returning fewer
                # than k rows (pgvector 0.8 "Iterative index scans").
                await conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                cur = await conn.execute(
                    schema.search_sql(len(vector)),
                    {"query": _vec(vector), "stores": store_ids, "k": k},
                )
                rows = await cur.fetchall()
        return [ChunkHit(r[0], r[1], r[2], r[3], r[4], r[5], float(r[6]), r[7] or {})
                for r in rows]

    async def store_sizes(self) -> list[tuple[str, str, int, int]]:
        """(tenant, store id, chunks, bytes) of every store, for the store-size gauges."""
        async with self.connection() as conn:
            cur = await conn.execute(
                "SELECT s.tenant, s.id,"
                " (SELECT count(*) FROM rag_chunks c WHERE c.vector_store_id = s.id),"
                " (SELECT COALESCE(sum(usage_bytes), 0) FROM rag_vector_store_files vf"
                "  WHERE vf.vector_store_id = s.id)"
                " FROM rag_vector_stores s"
            )
            return [(r[0], r[1], int(r[2]), int(r[3])) for r in await cur.fetchall()]


@dataclass(frozen=True)
class Page:
    """OpenAI list parameters: limit (1..100), order, after/before (cursor ids)."""

    limit: int = 20
    order: str = "desc"
    after: str | None = None
    before: str | None = None

    def sql(self, base: str, params: list[Any], table: str, alias: str = "") -> tuple[str, list]:
        col = f"{alias}." if alias else ""
        desc = self.order == "desc"
        where, extra = "", []
        # Cursor by (created_at, id) of the named row: stable under equal timestamps.
        for cursor, later in ((self.after, desc), (self.before, not desc)):
            if cursor:
                op = "<" if later else ">"
                key_col = "id" if table != "rag_vector_store_files" else "file_id"
                where += (
                    f" AND ({col}created_at, {col}{key_col}) {op}"
                    f" (SELECT created_at, {key_col} FROM {table} WHERE {key_col} = %s LIMIT 1)"
                )
                extra.append(cursor)
        key = "file_id" if table == "rag_vector_store_files" else "id"
        direction = "DESC" if desc else "ASC"
        order = f" ORDER BY {col}created_at {direction}, {col}{key} {direction} LIMIT %s"
        return base + where + order, [*params, *extra, self.limit + 1]


_FILE_COLUMNS = "id, bytes, created_at, filename, purpose"


def _file_row(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "object": "file",
        "bytes": int(row[1]),
        "created_at": int(row[2]),
        "filename": row[3],
        "purpose": row[4],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


async def _stores(
    conn: Any, where: str, params: list[Any], page: Page | None = None
) -> list[dict[str, Any]]:
    base = (
        "SELECT s.id, s.created_at, s.name, s.metadata, s.last_active_at,"
        " COALESCE(sum(vf.usage_bytes), 0),"
        " count(vf.file_id) FILTER (WHERE vf.status = 'in_progress'),"
        " count(vf.file_id) FILTER (WHERE vf.status = 'completed'),"
        " count(vf.file_id) FILTER (WHERE vf.status = 'failed'),"
        " count(vf.file_id) FILTER (WHERE vf.status = 'cancelled'),"
        " count(vf.file_id)"
        " FROM rag_vector_stores s LEFT JOIN rag_vector_store_files vf"
        " ON vf.vector_store_id = s.id"
        f" WHERE {where}"
    )
    if page is None:
        sql, args = base + " GROUP BY s.id", params
    else:
        sql, args = page.sql(base, params, "rag_vector_stores", "s")
        sql = sql.replace(" ORDER BY", " GROUP BY s.id ORDER BY", 1)
    cur = await conn.execute(sql, args)
    return [
        {
            "id": r[0],
            "object": "vector_store",
            "created_at": int(r[1]),
            "name": r[2],
            "metadata": r[3] or {},
            "last_active_at": int(r[4]),
            "usage_bytes": int(r[5]),
            "file_counts": {
                "in_progress": r[6], "completed": r[7], "failed": r[8], "cancelled": r[9],
                "total": r[10],
            },
            "status": "completed",
            "expires_after": None,
            "expires_at": None,
        }
        for r in await cur.fetchall()
    ]


async def _store_files(
    conn: Any, where: str, params: list[Any], page: Page | None = None
) -> list[dict[str, Any]]:
    base = (
        "SELECT vf.file_id, vf.created_at, vf.vector_store_id, vf.status, vf.last_error,"
        " vf.usage_bytes, vf.chunking, vf.attributes"
        " FROM rag_vector_store_files vf JOIN rag_vector_stores s ON s.id = vf.vector_store_id"
        f" WHERE {where}"
    )
    sql, args = (base, params) if page is None else page.sql(
        base, params, "rag_vector_store_files", "vf"
    )
    cur = await conn.execute(sql, args)
    return [
        {
            "id": r[0],
            "object": "vector_store.file",
            "created_at": int(r[1]),
            "vector_store_id": r[2],
            "status": r[3],
            "last_error": r[4],
            "usage_bytes": int(r[5]),
            "chunking_strategy": r[6],
            "attributes": r[7] or {},
        }
        for r in await cur.fetchall()
    ]


COPY_CHUNKS_SQL = (
    "COPY rag_chunks (vector_store_id, file_id, chunk_index, content, dimensions, embedding)"
    " FROM STDIN (FORMAT BINARY)"
)


def _vector_dumper(oid: int) -> type:
    """A psycopg binary dumper for pgvector's `vector`, in the form its receive function reads
    (pgvector src/vector.c, vector_recv: int16 dimensions, int16 unused, then each element as
    a float4, network byte order). Binary skips formatting every float as text here and
    parsing it back in the server: a COPY without the index went from 806 to 36,515 rows/s in
    one measurement here (docs/performance.md)."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class VectorBinaryDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Any) -> bytes:
            return struct.pack(f">HH{len(obj)}f", len(obj), 0, *obj)

    VectorBinaryDumper.oid = oid
    return VectorBinaryDumper


class _Embedding:
    """Never instantiated: the key the vector dumper is registered under, so that it serves
    only the COPY's `set_types` (by oid) and no Python type of the connection changes."""


async def copy_chunks(
    conn: Any, store_id: str, file_id: str, chunks: list[str], embeddings: list[list[float]]
) -> None:
    """Write a file's chunks with one binary COPY (inside the caller's transaction: a failure
    leaves none of them). COPY rather than row INSERTs: one statement and one round trip per
    file (psycopg 3 "COPY from a Python iterable"); docs/performance.md measures both, and the
    HNSW index's upkeep, which costs more than either (pgvector README, "Index Build Time")."""
    from psycopg.types import TypeInfo

    dims = len(embeddings[0])
    info = await TypeInfo.fetch(conn, "vector")
    if info is None:
        raise RuntimeError("the pgvector extension is not installed (run the RAG migration)")
    async with conn.cursor() as cur:
        cur.adapters.register_dumper(_Embedding, _vector_dumper(info.oid))
        async with cur.copy(COPY_CHUNKS_SQL) as copy:
            copy.set_types(["text", "text", "int4", "text", "int4", info.oid])
            for i, (text, vector) in enumerate(zip(chunks, embeddings, strict=True)):
                await copy.write_row((store_id, file_id, i, text, dims, vector))


def _vec(vector: list[float]) -> str:
    """pgvector's text form; avoids registering numpy adapters on every pooled connection."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
