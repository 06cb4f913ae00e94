"""The database credentials on AWS: IAM tokens for the gateway, Aurora's master password (in
Secrets Manager) for the migration Job only.

The gateway logs in as the application role the migration creates (`rag_app`: row access, no
DDL; serve_app/rag/schema.py) with an IAM database authentication token: when
`LLM_PLATFORM_RAG_IAM_REGION` is set, `credentials_for` signs one per new connection with the
pod's EKS Pod Identity credentials (a local SigV4 presign, no AWS call; valid 15 minutes, and
only needed at login). No password for that role exists anywhere.

The migration Job logs in as the master user, whose password Aurora generates, keeps and
rotates itself (`manage_master_user_password`, infra/serving/vector_db.py), so it is never in
Pulumi state nor in a Kubernetes Secret. The Job gets the DSN without a password
(`LLM_PLATFORM_RAG_DSN`) and the secret's ARN (`LLM_PLATFORM_RAG_SECRET_ARN`); `conninfo()` reads
the secret through its own Pod Identity role when it connects.

Locally and in tests neither variable is set and the DSN is used as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

SECRET_ARN_ENV_VAR = "LLM_PLATFORM_RAG_SECRET_ARN"
IAM_REGION_ENV_VAR = "LLM_PLATFORM_RAG_IAM_REGION"

# (secret ARN) -> the secret's JSON text. RDS's managed secret is {"username": .., "password": ..}
# (RDS user guide, "Password management with Amazon RDS and AWS Secrets Manager").
Fetch = Callable[[str], str]


def _secrets_manager(arn: str) -> str:
    import boto3  # in the ray-llm image; only needed on AWS

    # The secret's own region (arn:aws:secretsmanager:<region>:...): boto3 reads only
    # AWS_DEFAULT_REGION, which the pods need not have.
    region = arn.split(":")[3] if arn.count(":") >= 6 else None
    client = boto3.client("secretsmanager", region_name=region or None)
    return str(client.get_secret_value(SecretId=arn)["SecretString"])


def conninfo(dsn: str, secret_arn: str | None, fetch: Fetch = _secrets_manager) -> str:
    """The libpq conninfo to connect with: `dsn` plus the secret's user and password when
    `secret_arn` is given (the secret's values win over any in `dsn`)."""
    if not secret_arn:
        return dsn
    from psycopg.conninfo import make_conninfo

    try:
        secret = json.loads(fetch(secret_arn))
        user, password = secret["username"], secret["password"]
    except (ValueError, KeyError, TypeError) as exc:
        # Never echo the secret's text.
        raise RuntimeError(
            f"secret {secret_arn} is not RDS's {{\"username\", \"password\"}} JSON"
        ) from exc
    return make_conninfo(dsn, user=user, password=password)


def conninfo_from_env(dsn_env_var: str, fetch: Fetch = _secrets_manager) -> str:
    """`conninfo()` of the DSN in `dsn_env_var` and the ARN in LLM_PLATFORM_RAG_SECRET_ARN."""
    dsn = os.environ.get(dsn_env_var, "")
    if not dsn:
        raise RuntimeError(f"environment variable {dsn_env_var} (the database DSN) is not set")
    return conninfo(dsn, os.environ.get(SECRET_ARN_ENV_VAR), fetch)


# (host, port, user, region) -> an IAM database authentication token.
Token = Callable[[str, int, str, str], str]


def _rds_token(host: str, port: int, user: str, region: str) -> str:
    import boto3  # in the ray-llm image; only needed on AWS

    # A new Session per token, not boto3's shared default one, for two reasons:
    # - the pool's maintenance workers (psycopg_pool, num_workers=3) may open connections at
    #   once, each calling this in its own thread, and a Session must not create clients from
    #   several threads (boto/boto3#1592; botocore PR #2985: "Sessions are not thread safe");
    # - the credentials come from the Pod Identity agent through botocore's ContainerProvider
    #   (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, botocore
    #   >= 1.32.0), but before 1.34.41 a provider reads the token file once and refreshes with
    #   that token after kubelet rotated it (botocore commit 42903c42f, "Fix EKS credentials
    #   refresh bug"); the ray-llm image's base lock pins botocore 1.32.7. A new Session reads
    #   the current token file. Cost: ~70-150 ms in a worker thread, per new connection.
    # botocore's RDS presigner (botocore/signers.py, generate_db_auth_token) then signs locally
    # for `region`; RDS checks the signature at login against rds-db:connect.
    client = boto3.session.Session().client("rds", region_name=region)
    return str(client.generate_db_auth_token(
        DBHostname=host, Port=port, DBUsername=user, Region=region))


def iam_conninfo(dsn: str, region: str, token: Token = _rds_token) -> str:
    """`dsn` with a fresh IAM token as the password of its `user` (TLS is required by RDS for
    IAM logins; the DSN sets sslmode=require)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    host, user = params.get("host"), params.get("user")
    if not host or not user:
        raise RuntimeError("the database DSN names no host or user for an IAM login")
    port = int(params.get("port") or 5432)
    return make_conninfo(dsn, password=token(str(host), port, str(user), region))


def credentials_for(
    dsn: str, environ: Mapping[str, str], fetch: Fetch = _secrets_manager,
    token: Token = _rds_token,
) -> Callable[[], str] | None:
    """What builds each new connection's conninfo on AWS (IAM token, else the secret's
    password), or None locally: then `dsn` is used as it is."""
    region = environ.get(IAM_REGION_ENV_VAR)
    if region:
        return lambda: iam_conninfo(dsn, region, token)
    secret_arn = environ.get(SECRET_ARN_ENV_VAR)
    if secret_arn:
        return lambda: conninfo(dsn, secret_arn, fetch)
    return None
