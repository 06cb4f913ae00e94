"""infra/serving/vector_db.py: Aurora's settings, the secret grant (parliament-clean), the
NetworkPolicies and the migration Job (kubernetes-validate), and that the Job's script finds
the serve side's migration inside the code bundle the way it loads it."""

from __future__ import annotations

import json
import sys
import zipfile
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from infra import labels, versions
from infra.config.rag import AuroraConfig, StackRagConfig
from infra.serving import code_bundle
from infra.serving.vector_db import (
    APP_ROLE,
    DSN_ENV_VAR,
    IAM_REGION_ENV_VAR,
    JOB_LABELS,
    MIGRATE_SCRIPT,
    PORT,
    PSYCOPG_REQUIREMENT,
    SECRET_ARN_ENV_VAR,
    cluster_identifier,
    code_object_arn,
    connect_policy,
    database_cost,
    dsn,
    instance_names,
    job_name,
    migration_job,
    migration_policy,
    migration_policy_document,
    parameter_group_family,
    pod_env,
    ray_db_policy,
    scaling,
    secret_read_policy,
)
from tests.support.k8s_schema import core_object_errors
from tests.unit.infra.test_model_store import findings

ROOT = Path(__file__).resolve().parents[3]
K8S = "1.36"
DB_CIDRS = [IPv4Network("10.0.0.0/19"), IPv4Network("10.0.32.0/19")]
SECRET = "arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!cluster-abc-123456"
KEY = "arn:aws:kms:us-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"


def _job(**migration: object) -> dict:
    rag = StackRagConfig.model_validate({"migration": migration})
    return migration_job(
        rag=rag, namespace="serving",
        code_uri="s3://b/code/serve_app-abc.zip", code_version="abc123def456",
        region="us-west-2", dsn_value=dsn("db.example", rag.aurora, "rag_admin"),
        secret_arn=SECRET,
    )


def test_identifiers_and_parameter_family() -> None:
    assert cluster_identifier("llm-platform-prod") == "llm-platform-prod-rag"
    with pytest.raises(ValueError, match="not a valid RDS identifier"):
        cluster_identifier("x" * 70)
    assert parameter_group_family("16.8") == "aurora-postgresql16"


def test_scaling_sets_auto_pause_only_at_zero_acu() -> None:
    assert scaling(AuroraConfig()) == {"min_capacity": 0.5, "max_capacity": 8}
    paused = AuroraConfig(min_capacity_acu=0, seconds_until_auto_pause=600)
    assert scaling(paused)["seconds_until_auto_pause"] == 600


def test_readers_follow_the_writer() -> None:
    assert instance_names(AuroraConfig()) == ["writer"]
    assert instance_names(AuroraConfig(readers=2)) == ["writer", "reader-1", "reader-2"]


def test_secret_grant_reads_one_secret_and_decrypts_only_through_secrets_manager() -> None:
    doc = secret_read_policy(secret_arn=SECRET, key_arn=KEY, region="us-west-2")
    assert findings(doc) == []
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadDatabaseSecret"]["Resource"] == SECRET
    decrypt = by_sid["DecryptThroughSecretsManager"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == KEY
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-west-2.amazonaws.com"}}


def test_dsn_requires_tls_and_carries_no_password() -> None:
    value = dsn("db.example", AuroraConfig())
    assert "sslmode=require" in value and f"port={PORT}" in value
    assert "password" not in value and f"user={APP_ROLE}" in value


RESOURCE_ID = "cluster-ABCDEFGHIJKLMNOPQRSTUVWXY0"
CODE_KEY = "arn:aws:kms:us-west-2:123456789012:key/66666666-7777-8888-9999-000000000000"


def test_ray_pods_may_connect_as_the_app_role_only() -> None:
    """rds-db:connect on this cluster's one database user (RDS user guide, "Creating and using
    an IAM policy for IAM database access"); parliament-clean, no wildcard."""
    doc = connect_policy(region="us-west-2", account="123456789012",
                         cluster_resource_id=RESOURCE_ID)
    assert findings(doc) == []
    (stmt,) = doc["Statement"]
    assert stmt["Action"] == "rds-db:connect"
    assert stmt["Resource"] == (
        f"arn:aws:rds-db:us-west-2:123456789012:dbuser:{RESOURCE_ID}/{APP_ROLE}")
    assert "*" not in json.dumps(doc)
    env = {e["name"]: e["value"] for e in pod_env(dsn("db.example", AuroraConfig()), "us-west-2")}
    assert env == {DSN_ENV_VAR: dsn("db.example", AuroraConfig()),
                   IAM_REGION_ENV_VAR: "us-west-2"}  # no secret ARN: the pods cannot read it


def test_migration_identity_reads_the_master_secret_and_the_code_bundle_only() -> None:
    code = code_object_arn("s3://models-bucket/code/serve_app-abc.zip")
    assert code == "arn:aws:s3:::models-bucket/code/serve_app-abc.zip"
    doc = migration_policy_document(secret_arn=SECRET, secret_key_arn=KEY, code_object_arn=code,
                                    code_key_arn=CODE_KEY, region="us-west-2")
    assert findings(doc) == []
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid) == {"ReadDatabaseSecret", "DecryptThroughSecretsManager",
                           "ReadCodeBundle", "DecryptThroughS3"}
    assert (by_sid["ReadCodeBundle"]["Action"], by_sid["ReadCodeBundle"]["Resource"]) == (
        "s3:GetObject", code)
    assert by_sid["DecryptThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}


def test_network_policies_open_postgres_to_the_db_subnets_only() -> None:
    for obj in (ray_db_policy("serving", DB_CIDRS), migration_policy("serving", DB_CIDRS)):
        assert core_object_errors(obj, K8S) == []
        db_rules = [r for r in obj["spec"]["egress"]
                    if r["ports"] == [{"protocol": "TCP", "port": PORT}]]
        assert len(db_rules) == 1
        assert db_rules[0]["to"] == [{"ipBlock": {"cidr": str(c)}} for c in DB_CIDRS]
    ray = ray_db_policy("serving", DB_CIDRS)
    assert ray["spec"]["podSelector"] == {"matchLabels": {"ray.io/is-ray-node": "yes"}}
    job = migration_policy("serving", DB_CIDRS)
    assert job["spec"]["podSelector"] == {"matchLabels": JOB_LABELS}
    assert "ingress" not in job["spec"] and "Ingress" in job["spec"]["policyTypes"]


def test_migration_job_is_a_valid_job_on_the_head_pool() -> None:
    job = _job(dimensions=[384])
    assert core_object_errors(job, K8S) == []
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == labels.ray_head_scheduling()["nodeSelector"]
    assert pod["serviceAccountName"] == "rag-migrate"  # its own identity, not the Ray pods'
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["image"] == versions.RAY_LLM_IMAGE.ref
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env[SECRET_ARN_ENV_VAR] == SECRET and "password" not in env[DSN_ENV_VAR]
    assert "user=rag_admin" in env[DSN_ENV_VAR] and env["APP_ROLE"] == APP_ROLE
    assert env["DIMENSIONS"] == "384"
    assert job["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == str(15 * 60)


def test_job_name_changes_with_the_code_and_the_indexes() -> None:
    rag = StackRagConfig()
    name = job_name("abc", rag)
    assert name.startswith("rag-migrate-") and len(name) <= 63
    assert job_name("abd", rag) != name
    assert job_name("abc", StackRagConfig.model_validate({"migration": {"dimensions": [384]}})) \
        != name


def test_psycopg_pin_is_the_dev_requirements_pin() -> None:
    pins = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert PSYCOPG_REQUIREMENT in pins


def test_migrate_script_finds_the_schema_in_the_code_bundle(tmp_path: Path) -> None:
    """The script puts `<zip>/bundle` on sys.path (code_bundle's layout); the serve side's
    migration and the secret reader must import from there."""
    compile(MIGRATE_SCRIPT, "migrate", "exec")
    bundle = code_bundle.build()
    zpath = tmp_path / "code.zip"
    zpath.write_bytes(bundle.data)
    names = zipfile.ZipFile(zpath).namelist()
    assert "bundle/serve_app/rag/aws_secret.py" in names
    assert "bundle/serve_app/rag/schema.py" in names, "serve_app/rag/schema.py (h18a) missing"
    saved = {k: v for k, v in sys.modules.items() if k.startswith("serve_app")}
    try:
        for k in saved:
            del sys.modules[k]
        sys.path.insert(0, f"{zpath}/bundle")
        from serve_app.rag import aws_secret, schema

        assert str(zpath) in (aws_secret.__file__ or "") and callable(schema.main)
    finally:
        sys.path.remove(f"{zpath}/bundle")
        for k in [k for k in sys.modules if k.startswith("serve_app")]:
            del sys.modules[k]
        sys.modules.update(saved)


def test_database_cost_counts_every_instance() -> None:
    c = database_cost(AuroraConfig(min_capacity_acu=2, max_capacity_acu=32, readers=1))
    assert c.instances == 2
    assert c.usd_per_hour_min == pytest.approx(2 * 2 * 0.12)
    assert c.usd_per_hour_max == pytest.approx(2 * 32 * 0.12)
