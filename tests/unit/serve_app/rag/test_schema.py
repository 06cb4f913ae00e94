"""The RAG schema against a real PostgreSQL + pgvector (tools.local_pg)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from serve_app.rag import schema


def _fresh_db(dsn: str) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return dsn.rsplit("/", 1)[0] + "/" + name


async def _migrate(dsn: str, dims: tuple[int, ...] = ()) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await schema.migrate(conn, dims)


def test_migration_is_idempotent_and_safe_concurrently(postgres) -> None:
    dsn = _fresh_db(postgres.dsn)

    async def run() -> None:
        # Three at once (replicas + the Job), then once more on the finished schema.
        await asyncio.gather(*(_migrate(dsn, (384,)) for _ in range(3)))
        await _migrate(dsn, (384, 8))

    asyncio.run(run())
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'rag_%'")}
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'rag_chunks'")}
        versions = conn.execute("SELECT version FROM rag_schema_version").fetchall()
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()
    assert tables == {"rag_schema_version", "rag_files", "rag_vector_stores",
                      "rag_vector_store_files", "rag_chunks"}
    assert {"rag_chunks_hnsw_384", "rag_chunks_hnsw_8"} <= indexes
    assert versions == [(schema.SCHEMA_VERSION,)]
    assert ext is not None


def _seed(conn: psycopg.Connection, dims: int, n: int) -> None:
    conn.execute(
        "INSERT INTO rag_files VALUES ('file-1','t','a.txt','assistants',1,'\\x00','\\x00',0)"
    )
    conn.execute("INSERT INTO rag_vector_stores VALUES ('vs_1','t',NULL,'{}','e',0,0)")
    conn.execute("INSERT INTO rag_vector_store_files (vector_store_id, file_id, status, chunking,"
                 " created_at) VALUES ('vs_1','file-1','completed','{}',0)")
    conn.execute(
        "INSERT INTO rag_chunks (vector_store_id, file_id, chunk_index, content, dimensions,"
        " embedding) SELECT 'vs_1', 'file-1', i, 'chunk ' || i, %(d)s,"
        " (SELECT array_agg(((i * 7 + j) %% 11 + 1)::real)"
        "  FROM generate_series(1, %(d)s) j)::vector"
        " FROM generate_series(0, %(n)s - 1) i",
        {"d": dims, "n": n},
    )
    conn.execute("ANALYZE rag_chunks")


def test_search_uses_the_partial_hnsw_index_and_ranks_by_cosine(postgres) -> None:
    dsn = _fresh_db(postgres.dsn)
    asyncio.run(_migrate(dsn, (4,)))
    with psycopg.connect(dsn) as conn:
        _seed(conn, 4, 5000)  # big enough that the planner walks the index, as in production
        params = {"query": "[1,2,3,4]", "stores": ["vs_1"], "k": 3}
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + schema.search_sql(4), params))
        rows = conn.execute(schema.search_sql(4), params).fetchall()
    assert "rag_chunks_hnsw_4" in plan
    scores = [r[6] for r in rows]
    assert len(rows) == 3 and scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_a_vector_of_the_wrong_dimension_is_refused(postgres) -> None:
    dsn = _fresh_db(postgres.dsn)
    asyncio.run(_migrate(dsn))
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        _seed(conn, 4, 0)
        conn.execute("INSERT INTO rag_chunks (vector_store_id, file_id, chunk_index, content,"
                     " dimensions, embedding) VALUES ('vs_1','file-1',0,'x',3,'[1,2]')")


def test_deleting_a_store_file_removes_every_chunk(postgres) -> None:
    dsn = _fresh_db(postgres.dsn)
    asyncio.run(_migrate(dsn))
    with psycopg.connect(dsn) as conn:
        _seed(conn, 4, 5)
        conn.execute("DELETE FROM rag_vector_store_files WHERE file_id = 'file-1'")
        assert conn.execute("SELECT count(*) FROM rag_chunks").fetchone() == (0,)


@pytest.mark.parametrize("dims", [0, 2001, "3; DROP TABLE x"])
def test_bad_dimensions_are_refused_before_any_sql(dims) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        schema.hnsw_index_sql(dims)


def test_cli_reports_a_missing_dsn(monkeypatch, capsys) -> None:
    monkeypatch.delenv(schema.DSN_ENV_VAR, raising=False)
    assert schema.main([]) == 1
    assert schema.DSN_ENV_VAR in capsys.readouterr().err


def test_cli_migrates(postgres, monkeypatch, capsys) -> None:
    monkeypatch.setenv(schema.DSN_ENV_VAR, _fresh_db(postgres.dsn))
    assert schema.main(["--dimensions", "384"]) == 0
    assert f"version {schema.SCHEMA_VERSION}" in capsys.readouterr().out


def test_app_role_reads_and_writes_rows_but_runs_no_ddl(postgres) -> None:
    """The migration's application role (what the gateway logs in as on AWS): row access to
    every RAG table, the chunk id sequence and an existing HNSW index; CREATE and DROP of
    tables and indexes, and ALTER, are refused. Run twice: the grants are idempotent."""
    dsn = _fresh_db(postgres.dsn)
    role = "rag_app_test"

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await schema.migrate(conn, (8,), app_role=role)
            await schema.migrate(conn, (8,), app_role=role)  # again: nothing new, no error
            await conn.execute(f"SET ROLE {role}")
            await schema.ensure_hnsw_index(conn, 8)  # exists: no DDL, so allowed
            async with conn.transaction():  # as the gateway's attach: inside its transaction
                await schema.ensure_hnsw_index(conn, 16)  # would be DDL: skipped with a warning
                await conn.execute("SELECT count(*) FROM rag_chunks")  # the transaction goes on
            cur = await conn.execute("SELECT to_regclass('rag_chunks_hnsw_16')")
            assert (await cur.fetchone()) == (None,)

    asyncio.run(run())
    with psycopg.connect(dsn, autocommit=True) as conn:
        attrs = conn.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole "
                             "FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        assert attrs == (True, False, False, False)
        conn.execute(f"SET ROLE {role}")
        conn.execute("INSERT INTO rag_files VALUES ('f1', 't', 'a.txt', 'assistants', 3, "
                     "'\\x01', 'abc', 1)")
        conn.execute("INSERT INTO rag_vector_stores (id, tenant, embedder, created_at, "
                     "last_active_at) VALUES ('vs1', 't', 'e', 1, 1)")
        conn.execute("INSERT INTO rag_vector_store_files (vector_store_id, file_id, status, "
                     "chunking, created_at) VALUES ('vs1', 'f1', 'completed', '{}', 1)")
        conn.execute("INSERT INTO rag_chunks (vector_store_id, file_id, chunk_index, content, "
                     "dimensions, embedding) VALUES ('vs1', 'f1', 0, 'abc', 8, "
                     "'[1,0,0,0,0,0,0,0]')")
        conn.execute("UPDATE rag_vector_stores SET name = 'n' WHERE id = 'vs1'")
        assert conn.execute("SELECT count(*) FROM rag_chunks").fetchone() == (1,)
        assert conn.execute("SELECT max(version) FROM rag_schema_version").fetchone() == (
            schema.SCHEMA_VERSION,)
        for ddl in ("CREATE TABLE rag_evil (x int)", "DROP TABLE rag_chunks",
                    "DROP INDEX rag_chunks_hnsw_8", "ALTER TABLE rag_files ADD COLUMN x int",
                    "TRUNCATE rag_files", "INSERT INTO rag_schema_version VALUES (99)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
        conn.execute("DELETE FROM rag_vector_stores WHERE id = 'vs1'")  # cascades to chunks
        assert conn.execute("SELECT count(*) FROM rag_chunks").fetchone() == (0,)


@pytest.mark.parametrize("role", ["Rag", "rag-app", "x; DROP TABLE rag_files", ""])
def test_bad_app_role_names_are_refused_before_any_sql(role: str) -> None:
    with pytest.raises(ValueError, match="database role"):
        schema.app_role_statements(role)


def test_cli_creates_the_app_role(postgres, monkeypatch, capsys) -> None:
    dsn = _fresh_db(postgres.dsn)
    monkeypatch.setenv(schema.DSN_ENV_VAR, dsn)
    assert schema.main(["--dimensions", "8", "--app-role", "rag_app_cli"]) == 0
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT has_table_privilege('rag_app_cli', 'rag_chunks', 'INSERT'),"
                            " has_schema_privilege('rag_app_cli', 'public', 'CREATE')"
                            ).fetchone() == (True, False)
