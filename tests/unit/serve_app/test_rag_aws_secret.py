"""serve_app/rag/aws_secret.py: the DSN plus Aurora's managed secret, as libpq reads it."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

from serve_app.rag.aws_secret import SECRET_ARN_ENV_VAR, conninfo, conninfo_from_env

DSN = "host=db.example port=5432 dbname=rag user=rag_admin sslmode=require"
ARN = "arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!cluster-x"


def test_without_an_arn_the_dsn_is_used_as_it_is() -> None:
    assert conninfo(DSN, None, fetch=lambda _: pytest.fail("no fetch without an ARN")) == DSN


def test_the_secret_supplies_user_and_password() -> None:
    seen = []

    def fetch(arn: str) -> str:
        seen.append(arn)
        return json.dumps({"username": "rag_admin", "password": "p@ss word'"})

    parts = conninfo_to_dict(conninfo(DSN, ARN, fetch))
    assert seen == [ARN]
    assert parts["password"] == "p@ss word'" and parts["user"] == "rag_admin"
    assert parts["host"] == "db.example" and parts["sslmode"] == "require"


def test_a_malformed_secret_is_named_without_its_text() -> None:
    with pytest.raises(RuntimeError, match="is not RDS's") as exc:
        conninfo(DSN, ARN, fetch=lambda _: '{"password": "hunter2hunter2"}')
    assert "hunter2" not in str(exc.value)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_DSN", raising=False)
    with pytest.raises(RuntimeError, match="X_DSN"):
        conninfo_from_env("X_DSN")
    monkeypatch.setenv("X_DSN", DSN)
    monkeypatch.setenv(SECRET_ARN_ENV_VAR, ARN)
    got = conninfo_from_env("X_DSN", fetch=lambda _: '{"username": "u", "password": "p"}')
    assert conninfo_to_dict(got)["password"] == "p"
