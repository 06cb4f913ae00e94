"""The database credentials on AWS: Aurora's master password lives in Secrets Manager.

Aurora generates, keeps and rotates that password itself (`manage_master_user_password`,
infra/serving/vector_db.py), so it is never in Pulumi state nor in a Kubernetes Secret. The pods
get the DSN without a password (`LLM_PLATFORM_RAG_DSN`) and the secret's ARN
(`LLM_PLATFORM_RAG_SECRET_ARN`); `conninfo()` reads the secret through the pod's EKS Pod Identity
role whenever a connection is opened, so a rotation needs no restart (sessions already open keep
working: PostgreSQL checks a password only at login).

Locally and in tests no ARN is set and the DSN is used as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

SECRET_ARN_ENV_VAR = "LLM_PLATFORM_RAG_SECRET_ARN"

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
