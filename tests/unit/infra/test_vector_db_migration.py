"""The migration Job's script, run for real: the serve_app bundle from S3, the password from
Secrets Manager (both moto's servers, reached the way boto3 reaches AWS), the driver, then
serve_app/rag/schema.py against a real PostgreSQL + pgvector. What only EKS and Aurora add
(Pod Identity credentials, TLS) is not covered here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.config.rag import StackRagConfig
from infra.serving import code_bundle
from infra.serving.vector_db import APP_ROLE, DSN_ENV_VAR, MIGRATE_SCRIPT, migration_job
from tests.support.postgres import postgres  # noqa: F401  (a fixture)
from tools.process import free_port

CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-west-2"}


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=CREDS["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_job_script_migrates_the_database(
    postgres, aws_endpoint: str, tmp_path: Path  # noqa: F811
) -> None:
    bundle = code_bundle.build()
    s3 = _client("s3", aws_endpoint)
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={
        "LocationConstraint": CREDS["AWS_REGION"]})
    key = bundle.key("code/")
    s3.put_object(Bucket="models", Key=key, Body=bundle.data)
    arn = _client("secretsmanager", aws_endpoint).create_secret(
        Name="rds!cluster-test",
        SecretString=json.dumps({"username": "postgres", "password": "unused-locally"}),
    )["ARN"]

    rag = StackRagConfig.model_validate({"migration": {"dimensions": [384]}})
    spec = migration_job(rag=rag, namespace="serving",
                         code_uri=f"s3://models/{key}", code_version=bundle.version,
                         region=CREDS["AWS_REGION"], dsn_value=postgres.dsn, secret_arn=arn)
    (container,) = spec["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: str(e["value"]) for e in container["env"]}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env.update(SCRATCH=str(scratch), HOME=str(scratch), AWS_ENDPOINT_URL=aws_endpoint, **CREDS)
    assert env[DSN_ENV_VAR] == postgres.dsn
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG")}
    for _ in range(2):  # twice: the migration is idempotent
        # cwd outside the repo: serve_app must come from the bundle, not from this checkout.
        run = subprocess.run([sys.executable, "-c", MIGRATE_SCRIPT], env={**base, **env},
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "rag schema at version 1" in run.stdout

    import psycopg

    with psycopg.connect(postgres.dsn) as conn:
        idx = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'rag_chunks'"
                           " AND indexname = 'rag_chunks_hnsw_384'").fetchall()
        # The application role the Ray pods log in as: rows yes, DDL no.
        grants = conn.execute(
            "SELECT has_table_privilege(%s, 'rag_chunks', 'INSERT'),"
            " has_table_privilege(%s, 'rag_chunks', 'DELETE'),"
            " has_schema_privilege(%s, 'public', 'CREATE')",
            (APP_ROLE, APP_ROLE, APP_ROLE)).fetchone()
    assert idx == [("rag_chunks_hnsw_384",)]
    assert grants == (True, True, False)
    assert env["APP_ROLE"] == APP_ROLE
