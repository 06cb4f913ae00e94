"""serve_app/rag/aws_secret.py: the DSN plus Aurora's managed secret, as libpq reads it."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from psycopg.conninfo import conninfo_to_dict

from serve_app.rag.aws_secret import (
    IAM_REGION_ENV_VAR,
    SECRET_ARN_ENV_VAR,
    conninfo,
    conninfo_from_env,
    credentials_for,
    iam_conninfo,
)

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


APP_DSN = "host=db.example port=5432 dbname=rag user=rag_app sslmode=require"


def test_iam_login_signs_a_token_for_the_dsn_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real botocore presigner, offline, with fixed credentials: the password is an RDS
    `connect` request for the DSN's host, port and user, signed for the region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    parts = conninfo_to_dict(iam_conninfo(APP_DSN, "us-west-2"))
    token = str(parts["password"])
    assert token.startswith("db.example:5432/?Action=connect&DBUser=rag_app&")
    assert "X-Amz-Signature=" in token and "us-west-2%2Frds-db%2Faws4_request" in token
    assert parts["user"] == "rag_app" and parts["sslmode"] == "require"


def test_credentials_follow_the_environment() -> None:
    def token(host: str, port: int, user: str, region: str) -> str:
        return f"tok-{host}-{port}-{user}-{region}"

    def fetch(_: str) -> str:
        return '{"username": "rag_admin", "password": "master"}'

    assert credentials_for(APP_DSN, {}, fetch, token) is None  # local: the DSN as it is
    iam = credentials_for(APP_DSN, {IAM_REGION_ENV_VAR: "eu-west-1", SECRET_ARN_ENV_VAR: ARN},
                          fetch, token)
    assert iam is not None
    assert conninfo_to_dict(iam())["password"] == "tok-db.example-5432-rag_app-eu-west-1"
    secret = credentials_for(DSN, {SECRET_ARN_ENV_VAR: ARN}, fetch, token)
    assert secret is not None and conninfo_to_dict(secret())["password"] == "master"
    with pytest.raises(RuntimeError, match="no host or user"):
        iam_conninfo("dbname=rag", "eu-west-1", token)


class _PodIdentityAgent(http.server.BaseHTTPRequestHandler):
    """The EKS Pod Identity agent's credentials endpoint, on loopback: it answers the token in
    the Authorization header with credentials named after that token."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "")
        self.seen.append(token)
        body = json.dumps({
            "AccessKeyId": f"ASIA{token.upper().replace('-', '')}",
            "SecretAccessKey": "secret", "Token": "session", "Expiration": "2099-01-01T00:00:00Z",
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_each_iam_token_is_signed_with_the_current_pod_identity_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """botocore's container provider (what reads EKS Pod Identity's env) must see the token file
    kubelet rotated: botocore before 1.34.41 (the ray-llm image's lock pins 1.32.7) reads it
    once per provider, so a cached session would keep presenting the first token. Each login
    signs with credentials fetched with the file's current content."""
    _PodIdentityAgent.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _PodIdentityAgent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token_file = tmp_path / "eks-pod-identity-token"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # What the Pod Identity webhook sets (the agent listens on 169.254.170.23; botocore also
    # allows loopback: utils.py ContainerMetadataFetcher._ALLOWED_HOSTS).
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI",
                       f"http://127.0.0.1:{server.server_port}/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
    try:
        signed = []
        for token in ("token-one", "token-two"):  # kubelet rotates the projected token
            token_file.write_text(token)
            password = conninfo_to_dict(iam_conninfo(APP_DSN, "us-west-2"))["password"]
            signed.append(str(password))
    finally:
        server.shutdown()
        server.server_close()
    assert _PodIdentityAgent.seen == ["token-one", "token-two"]
    assert "X-Amz-Credential=ASIATOKENONE%2F" in signed[0]
    assert "X-Amz-Credential=ASIATOKENTWO%2F" in signed[1]
    assert all("us-west-2%2Frds-db%2Faws4_request" in s for s in signed)
