"""The RAG database schema: the one source of truth for tables, indexes and their migration.

Used by the gateway's own start-up (`serve_app.rag.store`) and by the platform's migration Job
(`python -m serve_app.rag.schema`, which reads the DSN from an environment variable). Every
statement is idempotent (`IF NOT EXISTS`) and the whole migration runs in one transaction under
an advisory lock, so replicas starting together and a Job racing them are all safe. On AWS the
Job also creates the application's own role (`--app-role`): row access only, no DDL; the
gateway then connects as that role and leaves the migration to the Job.

Vectors of any dimension share one `rag_chunks.embedding vector` column (stores may be embedded
by different models); each dimension gets a partial HNSW expression index over
`embedding::vector(<dims>)`, the form pgvector documents for mixed dimensions
(pgvector README, "Indexing" / expression and partial indexes; HNSW needs a fixed dimension).
Searches must use the same expression and predicate to hit it: see `search_sql`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# pg_advisory_xact_lock key: any constant unique to this schema ("rag" + version family).
_LOCK_KEY = 0x52_41_47_01
DSN_ENV_VAR = "LLM_PLATFORM_RAG_DSN"

STATEMENTS: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE IF NOT EXISTS rag_schema_version (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    )""",
    # One row per uploaded file. `tenant` is the API key's name; a tenant uploading the same
    # bytes twice gets its first file back (unique content hash per tenant).
    """CREATE TABLE IF NOT EXISTS rag_files (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        filename text NOT NULL,
        purpose text NOT NULL,
        bytes bigint NOT NULL CHECK (bytes > 0),
        content_sha256 bytea NOT NULL,
        content bytea NOT NULL,
        created_at bigint NOT NULL,
        UNIQUE (tenant, content_sha256)
    )""",
    "CREATE INDEX IF NOT EXISTS rag_files_tenant ON rag_files (tenant, created_at)",
    """CREATE TABLE IF NOT EXISTS rag_vector_stores (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        name text,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        embedder text NOT NULL,
        created_at bigint NOT NULL,
        last_active_at bigint NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS rag_vector_stores_tenant ON rag_vector_stores (tenant, created_at)",
    """CREATE TABLE IF NOT EXISTS rag_vector_store_files (
        vector_store_id text NOT NULL REFERENCES rag_vector_stores (id) ON DELETE CASCADE,
        file_id text NOT NULL REFERENCES rag_files (id) ON DELETE CASCADE,
        status text NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed', 'cancelled')),
        last_error jsonb,
        usage_bytes bigint NOT NULL DEFAULT 0,
        chunking jsonb NOT NULL,
        attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at bigint NOT NULL,
        PRIMARY KEY (vector_store_id, file_id)
    )""",
    """CREATE TABLE IF NOT EXISTS rag_chunks (
        id bigserial PRIMARY KEY,
        vector_store_id text NOT NULL,
        file_id text NOT NULL,
        chunk_index integer NOT NULL,
        content text NOT NULL,
        dimensions integer NOT NULL,
        embedding vector NOT NULL,
        FOREIGN KEY (vector_store_id, file_id)
            REFERENCES rag_vector_store_files (vector_store_id, file_id) ON DELETE CASCADE,
        UNIQUE (vector_store_id, file_id, chunk_index),
        CHECK (vector_dims(embedding) = dimensions)
    )""",
    "CREATE INDEX IF NOT EXISTS rag_chunks_file ON rag_chunks (file_id)",
    f"INSERT INTO rag_schema_version (version) VALUES ({SCHEMA_VERSION}) ON CONFLICT DO NOTHING",
)


def hnsw_index_name(dimensions: int) -> str:
    return f"rag_chunks_hnsw_{dimensions}"


def hnsw_index_sql(dimensions: int) -> str:
    """The partial HNSW index (cosine distance) over the chunks of one embedding dimension."""
    _check_dims(dimensions)
    return (
        f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(dimensions)} ON rag_chunks"
        f" USING hnsw ((embedding::vector({dimensions})) vector_cosine_ops)"
        f" WHERE dimensions = {dimensions}"
    )


def search_sql(dimensions: int) -> str:
    """Nearest chunks of the given stores by cosine distance, through the HNSW index above.

    Parameters: %(query)s (the query vector), %(stores)s (store ids), %(k)s (limit).
    Cosine similarity (1 - distance) is the score, as OpenAI's search reports one in [0, 1].
    """
    _check_dims(dimensions)
    expr = f"embedding::vector({dimensions})"
    # The nearest-k scan touches rag_chunks alone (so the planner can walk the HNSW index in
    # distance order); names and attributes are joined to those k rows afterwards.
    return (
        "WITH nearest AS MATERIALIZED ("
        " SELECT id, vector_store_id, file_id, chunk_index, content,"
        f" {expr} <=> %(query)s::vector({dimensions}) AS distance"
        " FROM rag_chunks"
        f" WHERE dimensions = {dimensions} AND vector_store_id = ANY(%(stores)s)"
        f" ORDER BY {expr} <=> %(query)s::vector({dimensions})"
        " LIMIT %(k)s)"
        " SELECT n.id, n.vector_store_id, n.file_id, f.filename, n.chunk_index, n.content,"
        " 1 - n.distance AS score, vf.attributes"
        " FROM nearest n"
        " JOIN rag_files f ON f.id = n.file_id"
        " JOIN rag_vector_store_files vf"
        "   ON vf.vector_store_id = n.vector_store_id AND vf.file_id = n.file_id"
        " ORDER BY n.distance"
    )


def _check_dims(dimensions: int) -> None:
    # pgvector's HNSW indexes vectors of up to 2,000 dimensions (pgvector README, "HNSW").
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 2000:
        raise ValueError(f"embedding dimensions must be an integer in 1..2000, got {dimensions!r}")


# The tables the application reads and writes (every table of STATEMENTS but the version log,
# which it may only read), and the sequence of rag_chunks.id (bigserial).
APP_TABLES = ("rag_files", "rag_vector_stores", "rag_vector_store_files", "rag_chunks")
APP_SEQUENCES = ("rag_chunks_id_seq",)
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def app_role_statements(role: str) -> list[Any]:
    """Least privilege for the application's database role (created if missing, as a LOGIN
    role without a password): connect, use the schema, read and write rows of the RAG tables;
    no CREATE on the schema, no table ownership, hence no DDL (PostgreSQL 15+ no longer grants
    CREATE on `public` to PUBLIC: "Schemas" / "The Public Schema" in its manual). On RDS/Aurora
    it is also granted `rds_iam`, so it logs in only with an IAM token (RDS user guide, "Creating
    a database account using IAM authentication"); that role exists only there."""
    from psycopg import sql

    if not _ROLE_RE.fullmatch(role):
        raise ValueError(f"database role {role!r} must match {_ROLE_RE.pattern}")
    r = sql.Identifier(role)
    return [
        sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
                "CREATE ROLE {role} LOGIN; END IF; END $$").format(name=sql.Literal(role), role=r),
        sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS").format(r),
        sql.SQL("DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN "
                "GRANT rds_iam TO {}; END IF; END $$").format(r),
        sql.SQL("DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', "
                "current_database(), {}); END $$").format(sql.Literal(role)),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r),
        sql.SQL("GRANT SELECT ON rag_schema_version TO {}").format(r),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, APP_TABLES)), r),
        sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, APP_SEQUENCES)), r),
    ]


async def migrate(
    conn: Any, dimensions: list[int] | tuple[int, ...] = (), app_role: str | None = None
) -> None:
    """Create or complete the schema (and the HNSW index of each given dimension; and the
    application's role, `app_role`, with its grants) on an open psycopg AsyncConnection. One
    transaction under an advisory lock: safe to run concurrently."""
    grants = app_role_statements(app_role) if app_role else []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for statement in STATEMENTS:
            await conn.execute(statement)
        for dims in dimensions:
            await conn.execute(hnsw_index_sql(dims))
        for grant in grants:
            await conn.execute(grant)


async def ensure_hnsw_index(conn: Any, dimensions: int) -> None:
    """The HNSW index of one dimension (idempotent; serialised with migrations by the lock).
    An index that exists is left alone without any DDL: the application's role may not create
    indexes (the migration Job builds the configured dimensions' up front)."""
    _check_dims(dimensions)
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                             (hnsw_index_name(dimensions),))
    row = await cur.fetchone()
    if row and row[0]:
        return
    import psycopg

    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute(hnsw_index_sql(dimensions))
    except psycopg.errors.InsufficientPrivilege:
        # The application role (AWS): searches still work, by exact scan, until the migration
        # Job builds the index (rolled back to the savepoint; the caller's transaction goes on).
        logger.warning("RAG: no HNSW index for %d dimensions and no right to create it; add %d "
                       "to rag.migration.dimensions", dimensions, dimensions)


async def _main_async(dsn: str, dimensions: list[int], app_role: str | None = None) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await migrate(conn, dimensions, app_role)
        cur = await conn.execute("SELECT max(version) FROM rag_schema_version")
        row = await cur.fetchone()
        print(f"rag schema at version {row[0] if row else '?'}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m serve_app.rag.schema [--dimensions 384 ...] [--app-role NAME]`: migrate the
    database named by $LLM_PLATFORM_RAG_DSN (or --dsn-env VAR). Exit 1 with the reason on
    failure."""
    parser = argparse.ArgumentParser(description="Create or complete the RAG database schema.")
    parser.add_argument("--dsn-env", default=DSN_ENV_VAR, help="env var holding the libpq DSN")
    parser.add_argument(
        "--dimensions", type=int, nargs="*", default=[],
        help="embedding dimensions to build HNSW indexes for (the gateway also adds them lazily)",
    )
    parser.add_argument(
        "--app-role", default=None,
        help="create (if missing) the application's database role and grant it row access only",
    )
    args = parser.parse_args(argv)
    dsn = os.environ.get(args.dsn_env, "")
    if not dsn:
        print(f"error: environment variable {args.dsn_env} (the database DSN) is not set",
              file=sys.stderr)
        return 1
    try:
        asyncio.run(_main_async(dsn, args.dimensions, args.app_role))
    except Exception as exc:  # report any driver error as one line, for the Job's log
        print(f"error: migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
