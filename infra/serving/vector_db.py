"""The vector database on AWS: Aurora PostgreSQL Serverless v2 with pgvector (issue 18).

Made when `serving.rag.enabled`; sized by the stack config's `rag.aurora` (infra/config/rag.py).

- In the private subnets (a DB subnet group over them), never publicly accessible.
- A security group of its own that admits only PostgreSQL (5432) from the cluster security group
  (the nodes' and therefore the pods' group, as for the GCS Redis), and nothing else.
- Storage, Performance Insights and the master-password secret encrypted with a customer managed
  KMS key that rotates yearly; TLS required (`rds.force_ssl`).
- Continuous backups (`rag.aurora.backupRetentionDays`), a final snapshot on delete; in prod a
  reader instance (Multi-AZ failover) and deletion protection (the config refuses prod without).
- Credentials, two logins:
  - The Ray pods log in as the application role `rag_app` (row access, no DDL), which the
    migration creates, with IAM database authentication: their Pod Identity role may
    `rds-db:connect` as that one user of this cluster, and they get the DSN (user rag_app, no
    password) and the region as env (serve_app/rag/aws_secret.py signs a token per new
    connection). No password for it exists; they cannot read the master secret.
  - The migration Job logs in as the master user: Aurora's own Secrets Manager secret
    (`manage_master_user_password`; RDS generates and rotates it, never in Pulumi state). Only
    the Job's own Pod Identity role may read it (decrypting through Secrets Manager only).
  Why IAM auth for the pods rather than a second secret: docs/rag-aws.md.
- The schema (extension, tables, HNSW indexes: serve_app/rag/schema.py, the serve side's one
  schema) is created by a Kubernetes Job in the serving namespace, not from the machine running
  `pulumi up` (the database is private). It runs the pinned ray-llm image under its own
  ServiceAccount and role (read the master secret and the serve_app bundle, nothing else), and
  waits for the writer instance, its identity, the namespace and its NetworkPolicy. A new code
  bundle is a new Job (its name carries the code version), so a schema change ships with the
  code that needs it. It also creates the application role and its grants (idempotent).
- NetworkPolicies: egress to 5432 of the DB subnets for the Ray pods and the Job. Aurora is
  outside the cluster (no Service, no pod labels), so the peer is an `ipBlock` of the DB
  subnets' CIDRs: the only selector that can name it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.component import register_declared_outputs
from infra.config.network import NetworkConfig
from infra.config.rag import AuroraConfig, StackRagConfig
from infra.config.stack import StackConfig
from infra.context import StackContext
from infra.foundation.network import subnet_plan
from infra.iam import pod_identity_role
from infra.serving.ray_job import SCRATCH, ray_image_job
from infra.serving.rayservice import RayPodExtras

PORT = 5432
ENGINE = "aurora-postgresql"
# Serverless v2 instances use this class (pulumi_aws 7.51.1 rds.ClusterInstance docs:
# "instance_class ... db.serverless").
SERVERLESS_CLASS = "db.serverless"
# The serve side's env contract (serve_app/rag/schema.py DSN_ENV_VAR, serve_app/rag/aws_secret.py).
DSN_ENV_VAR = "LLM_PLATFORM_RAG_DSN"
SECRET_ARN_ENV_VAR = "LLM_PLATFORM_RAG_SECRET_ARN"
IAM_REGION_ENV_VAR = "LLM_PLATFORM_RAG_IAM_REGION"
# The application's database role: the migration creates it (serve_app/rag/schema.py,
# app_role_statements) and the Ray pods log in as it with IAM tokens.
APP_ROLE = "rag_app"
# The migration Job's own ServiceAccount (and Pod Identity role): the master secret stays
# out of the Ray pods' reach.
MIGRATE_SERVICE_ACCOUNT = "rag-migrate"
# psycopg for the migration Job, the same pin as requirements-dev.txt (a unit test checks);
# the ray-llm image does not ship a PostgreSQL driver.
PSYCOPG_REQUIREMENT = "psycopg[binary]==3.3.9"
# Aurora Serverless v2 on-demand price per ACU-hour, Aurora Standard, us-east-1 / us-west-2
# (aws.amazon.com/rds/aurora/pricing, read 2026-11); storage and I/O are billed on top.
USD_PER_ACU_HOUR = 0.12

JOB_LABELS = {"app.kubernetes.io/name": "rag-migrate", "app.kubernetes.io/part-of": "llm-platform"}
RAY_POD = {"ray.io/is-ray-node": "yes"}  # KubeRay's label on every Ray pod (network_policy.py)
DNS_POD = {"k8s-app": "kube-dns"}
POD_IDENTITY_AGENT = "169.254.170.23/32"
NS_LABEL = "kubernetes.io/metadata.name"
TTL_SECONDS_AFTER_FINISHED = 86_400
BACKOFF_LIMIT = 3  # a paused Aurora may refuse the first connection while it resumes

# Runs as `python -c` in the ray-llm image: the driver into the scratch volume (if the image
# lacks it), the serve_app bundle from the model store, the password from Secrets Manager, then
# the serve side's own migration (`serve_app.rag.schema.main`). Inputs come from env, not
# string formatting.
MIGRATE_SCRIPT = """\
import importlib.util, os, subprocess, sys
import boto3
scratch = os.environ["SCRATCH"]
if importlib.util.find_spec("psycopg") is None:  # the pinned ray-llm image has none
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir",
                    "--target", scratch + "/py", os.environ["PSYCOPG_REQUIREMENT"]], check=True)
bucket, _, key = os.environ["CODE_URI"].removeprefix("s3://").partition("/")
boto3.client("s3").download_file(bucket, key, scratch + "/code.zip")
sys.path[:0] = [scratch + "/py", scratch + "/code.zip/bundle"]
from serve_app.rag import aws_secret, schema
os.environ["MIGRATION_DSN"] = aws_secret.conninfo_from_env(os.environ["DSN_ENV_VAR"])
dims = [d for d in os.environ.get("DIMENSIONS", "").split(",") if d]
sys.exit(schema.main(["--dsn-env", "MIGRATION_DSN", "--app-role", os.environ["APP_ROLE"],
                      *(["--dimensions", *dims] if dims else [])]))
"""


# ------------------------------------------------------------------------------ pure builders
def db_subnet_cidrs(network: NetworkConfig) -> list[IPv4Network]:
    """The DB subnet group's CIDRs: the private subnets (infra/foundation/network.py's plan)."""
    return subnet_plan(network.vpc_cidr, network.az_count, network.pod_cidr).private


def cluster_identifier(cluster_name: str) -> str:
    """RDS cluster ids: 1-63 letters, digits or hyphens, starting with a letter, no `--`."""
    cid = f"{cluster_name}-rag"
    if len(cid) > 63 or "--" in cid or not cid[0].isalpha():
        raise ValueError(f"Aurora cluster id {cid!r} is not a valid RDS identifier")
    return cid


def parameter_group_family(engine_version: str) -> str:
    """`aurora-postgresql16` for 16.x (RDS parameter group families are per major version)."""
    return f"{ENGINE}{engine_version.split('.')[0]}"


def scaling(cfg: AuroraConfig) -> dict[str, Any]:
    """`serverlessv2_scaling_configuration` (pulumi_aws 7.51.1
    ClusterServerlessv2ScalingConfigurationArgs: max_capacity, min_capacity,
    seconds_until_auto_pause)."""
    out: dict[str, Any] = {"min_capacity": cfg.min_capacity_acu,
                           "max_capacity": cfg.max_capacity_acu}
    if cfg.seconds_until_auto_pause is not None:
        out["seconds_until_auto_pause"] = cfg.seconds_until_auto_pause
    return out


def instance_names(cfg: AuroraConfig) -> list[str]:
    """The writer first, then the readers: promotion tiers follow this order."""
    return ["writer", *(f"reader-{i + 1}" for i in range(cfg.readers))]


def secret_read_policy(*, secret_arn: str, key_arn: str, region: str) -> dict[str, Any]:
    """The Ray pods' (and the migration Job's) grant: read the one database secret, decrypt it
    only through Secrets Manager (Secrets Manager user guide, "Permissions for a customer
    managed key": kms:Decrypt with kms:ViaService secretsmanager)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadDatabaseSecret", "Effect": "Allow",
             "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
             "Resource": secret_arn},
            {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow",
             "Action": "kms:Decrypt", "Resource": key_arn,
             "Condition": {"StringEquals": {
                 "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
        ],
    }


def connect_policy(
    *, region: str, account: str, cluster_resource_id: str, partition: str = "aws"
) -> dict[str, Any]:
    """The Ray pods' grant: log in to this cluster as the application role only, with an IAM
    token (RDS user guide, "Creating and using an IAM policy for IAM database access": resource
    `arn:aws:rds-db:<region>:<account>:dbuser:<DbClusterResourceId>/<db user>`)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ConnectAsTheAppRole", "Effect": "Allow", "Action": "rds-db:connect",
            "Resource": f"arn:{partition}:rds-db:{region}:{account}:dbuser:"
                        f"{cluster_resource_id}/{APP_ROLE}",
        }],
    }


def migration_policy_document(
    *, secret_arn: str, secret_key_arn: str, code_object_arn: str, code_key_arn: str,
    region: str,
) -> dict[str, Any]:
    """The migration Job's grant: the master secret (as `secret_read_policy`) and the one code
    bundle object, decrypted through S3 only (its bucket's key)."""
    doc = secret_read_policy(secret_arn=secret_arn, key_arn=secret_key_arn, region=region)
    doc["Statement"] += [
        {"Sid": "ReadCodeBundle", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": code_object_arn},
        {"Sid": "DecryptThroughS3", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": code_key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    ]
    return doc


def code_object_arn(code_uri: str, partition: str = "aws") -> str:
    """`s3://bucket/key` -> the object's ARN."""
    bucket, _, key = code_uri.removeprefix("s3://").partition("/")
    return f"arn:{partition}:s3:::{bucket}/{key}"


def dsn(endpoint: str, cfg: AuroraConfig, user: str = APP_ROLE) -> str:
    """A libpq DSN without a password (an IAM token for the app role, the secret for the
    master user). TLS is required; the server's certificate is not verified (the RDS CA bundle
    is not in the image)."""
    return (f"host={endpoint} port={PORT} dbname={cfg.database_name} "
            f"user={user} sslmode=require connect_timeout=10")


def pod_env(dsn_value: pulumi.Input[str], region: str) -> list[dict[str, Any]]:
    """The Ray pods': the app role's DSN and the region its IAM tokens are signed for."""
    return [{"name": DSN_ENV_VAR, "value": dsn_value},
            {"name": IAM_REGION_ENV_VAR, "value": region}]


def job_env(master_dsn: pulumi.Input[str], secret_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """The migration Job's: the master user's DSN and the ARN of its secret."""
    return [{"name": DSN_ENV_VAR, "value": master_dsn},
            {"name": SECRET_ARN_ENV_VAR, "value": secret_arn}]


def _egress_to_db(db_cidrs: Sequence[IPv4Network]) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": str(c)}} for c in db_cidrs],
            "ports": [{"protocol": "TCP", "port": PORT}]}


def ray_db_policy(namespace: str, db_cidrs: Sequence[IPv4Network]) -> dict[str, Any]:
    """The Ray pods may reach PostgreSQL in the DB subnets (added to infra/network_policy.py's
    allow-list: NetworkPolicies are additive)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "ray-egress-rag-db", "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": RAY_POD}, "policyTypes": ["Egress"],
                 "egress": [_egress_to_db(db_cidrs)]},
    }


def migration_policy(namespace: str, db_cidrs: Sequence[IPv4Network]) -> dict[str, Any]:
    """The migration Job's pods: no ingress; egress to DNS, HTTPS (S3, STS, Secrets Manager,
    PyPI for the driver), the Pod Identity agent and PostgreSQL in the DB subnets."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "rag-migrate", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": dict(JOB_LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {NS_LABEL: "kube-system"}},
                         "podSelector": {"matchLabels": DNS_POD}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                 "ports": [{"protocol": "TCP", "port": 443}]},
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                 "ports": [{"protocol": "TCP", "port": 80}]},
                _egress_to_db(db_cidrs),
            ],
        },
    }


def with_migration_job(cfg: StackConfig) -> StackConfig:
    """The stack config the RayService is built from when the database is Aurora: the gateway
    leaves the schema to the migration Job (its role, rag_app, may not run DDL). The config
    check refuses an explicit `serving.rag.database.migrateOnStart: true`
    (infra/config/stack.py)."""
    rag = cfg.serving.rag
    database = rag.database.model_copy(update={"migrate_on_start": False})
    serving = cfg.serving.model_copy(
        update={"rag": rag.model_copy(update={"database": database})})
    return cfg.model_copy(update={"serving": serving})


def job_name(code_version: str, rag: StackRagConfig) -> str:
    """`rag-migrate-<hash>`: a new code bundle, engine or index set is a new Job."""
    digest = hashlib.sha256(json.dumps(
        [code_version, rag.aurora.engine_version, rag.migration.dimensions]).encode()).hexdigest()
    return f"rag-migrate-{digest[:12]}"


def migration_job(
    *, rag: StackRagConfig, namespace: str, code_uri: str, code_version: str, region: str,
    dsn_value: pulumi.Input[str], secret_arn: pulumi.Input[str],
    service_account: str = MIGRATE_SERVICE_ACCOUNT,
) -> dict[str, Any]:
    """The migration Job (a plain dict, as `kubernetes.batch.v1.Job` takes it); `dsn_value`:
    the master user's DSN."""
    deadline = rag.migration.timeout_minutes * 60
    env: list[dict[str, Any]] = [
        *job_env(dsn_value, secret_arn),
        {"name": "DSN_ENV_VAR", "value": DSN_ENV_VAR},
        {"name": "APP_ROLE", "value": APP_ROLE},
        {"name": "CODE_URI", "value": code_uri},
        {"name": "PSYCOPG_REQUIREMENT", "value": PSYCOPG_REQUIREMENT},
        {"name": "DIMENSIONS", "value": ",".join(str(d) for d in rag.migration.dimensions)},
        {"name": "SCRATCH", "value": SCRATCH},
        {"name": "HOME", "value": SCRATCH},  # pip writes under $HOME; the root fs is read-only
        {"name": "AWS_REGION", "value": region},
        # boto3 reads the region from AWS_DEFAULT_REGION, not AWS_REGION (botocore's config
        # table, `region`); without it the secret read fails with NoRegionError.
        {"name": "AWS_DEFAULT_REGION", "value": region},
        {"name": "PIP_DISABLE_PIP_VERSION_CHECK", "value": "1"},
    ]
    # Its own identity: it reads the code bundle and the master secret.
    return ray_image_job(
        name=job_name(code_version, rag), namespace=namespace, job_labels=JOB_LABELS,
        annotations={"llm-platform.io/code-version": code_version},
        backoff_limit=BACKOFF_LIMIT, ttl_seconds=TTL_SECONDS_AFTER_FINISHED,
        deadline_seconds=deadline, service_account=service_account, container="migrate",
        script=MIGRATE_SCRIPT, env=env, cpu="500m", memory="1Gi", scratch="2Gi",
    )


@dataclass(frozen=True)
class DatabaseCost:
    """What the database's compute costs per hour: every instance at the minimum and at the
    maximum ACUs (storage, I/O and backups beyond the free retention are billed on top)."""

    instances: int
    min_acu: float
    max_acu: float
    usd_per_hour_min: float
    usd_per_hour_max: float


def database_cost(cfg: AuroraConfig) -> DatabaseCost:
    n = 1 + cfg.readers
    return DatabaseCost(
        instances=n, min_acu=cfg.min_capacity_acu, max_acu=cfg.max_capacity_acu,
        usd_per_hour_min=round(n * cfg.min_capacity_acu * USD_PER_ACU_HOUR, 2),
        usd_per_hour_max=round(n * cfg.max_capacity_acu * USD_PER_ACU_HOUR, 2),
    )


# --------------------------------------------------------------------------------- component
class VectorDatabase(pulumi.ComponentResource):
    """Aurora PostgreSQL + pgvector and its in-cluster migration. Outputs: `endpoint`,
    `secret_arn`, `job_name`, `job`, `policies` and `grants` (pass the last three to the
    RayService's `after`)."""

    endpoint: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    job_name: str
    job: k8s.batch.v1.Job
    policies: list[k8s.networking.v1.NetworkPolicy]
    grants: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        rag: StackRagConfig,
        cluster: pulumi.Resource,
        cluster_security_group_id: pulumi.Input[str],
        vpc_id: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[str]],
        db_cidrs: Sequence[IPv4Network],
        provider: k8s.Provider,
        namespace: str,
        pods_role_name: pulumi.Input[str],
        code_uri: str,
        code_key_arn: pulumi.Input[str],
        code_version: str,
        ctx: StackContext,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`subnet_ids`/`db_cidrs`: the private subnets (ids and their CIDRs); `pods_role_name`:
        the Ray pods' Pod Identity role (the model store's); `code_uri`/`code_key_arn`: the
        serve_app bundle and its bucket's KMS key; `after`: what the Job waits for besides the
        database (the namespace, the model store with its code bundle, the NodePool its pod
        lands on)."""
        super().__init__("llm-platform:aws:VectorDatabase", name, None, opts)
        cfg, tags = rag.aurora, ctx.tags
        region = aws.get_region().region
        partition = aws.get_partition().partition
        account = aws.get_caller_identity().account_id
        child = pulumi.ResourceOptions(parent=self, depends_on=[cluster])
        protect = pulumi.ResourceOptions(parent=self, depends_on=[cluster],
                                         protect=cfg.deletion_protection)
        cid = cluster_identifier(ctx.cluster_name)

        key = aws.kms.Key(
            f"{name}-key", description=f"Aurora storage and secret of {cid}",
            enable_key_rotation=True, deletion_window_in_days=30, tags=tags, opts=child,
        )
        aws.kms.Alias(f"{name}-key", name=f"alias/{cid}", target_key_id=key.key_id, opts=child)
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets", name=cid, description=f"Private subnets of {cid}",
            subnet_ids=subnet_ids, tags=tags, opts=child,
        )
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg", name=cid,
            description=f"{cid}: PostgreSQL from the cluster security group only",
            vpc_id=vpc_id, tags=tags, opts=child,
        )
        # Ingress only; no egress rule (the database opens no connections; SGs are stateful).
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster", security_group_id=sg.id,
            referenced_security_group_id=cluster_security_group_id, ip_protocol="tcp",
            from_port=PORT, to_port=PORT, description="Ray pods and the migration Job",
            tags=tags, opts=child,
        )
        params = aws.rds.ClusterParameterGroup(
            f"{name}-params", name=cid, family=parameter_group_family(cfg.engine_version),
            description=f"{cid}: TLS required",
            parameters=[{"name": "rds.force_ssl", "value": "1"}], tags=tags, opts=child,
        )
        db = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=cid,
            engine=ENGINE,
            engine_mode="provisioned",  # Serverless v2 is provisioned mode + db.serverless
            engine_version=cfg.engine_version,
            database_name=cfg.database_name,
            master_username=cfg.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key.arn,
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[sg.id],
            db_cluster_parameter_group_name=params.name,
            port=PORT,
            serverlessv2_scaling_configuration=scaling(cfg),
            backup_retention_period=cfg.backup_retention_days,
            preferred_backup_window=cfg.preferred_backup_window,
            copy_tags_to_snapshot=True,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=not cfg.final_snapshot,
            final_snapshot_identifier=f"{cid}-final" if cfg.final_snapshot else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            # The Ray pods log in as rag_app with IAM tokens (the master user keeps its password).
            iam_database_authentication_enabled=True,
            tags=tags,
            opts=protect,
        )
        instances = [
            aws.rds.ClusterInstance(
                f"{name}-{role}",
                identifier=f"{cid}-{role}",
                cluster_identifier=db.id,
                engine=ENGINE,
                engine_version=cfg.engine_version,
                instance_class=SERVERLESS_CLASS,
                db_subnet_group_name=subnets.name,
                publicly_accessible=False,
                promotion_tier=tier,
                auto_minor_version_upgrade=True,
                performance_insights_enabled=cfg.performance_insights,
                performance_insights_kms_key_id=key.arn if cfg.performance_insights else None,
                tags=tags,
                opts=protect,
            )
            for tier, role in enumerate(instance_names(cfg))
        ]
        secret_arn = db.master_user_secrets.apply(_secret_arn)
        connect = aws.iam.RolePolicy(
            f"{name}-connect", role=pods_role_name,
            policy=db.cluster_resource_id.apply(lambda rid: json.dumps(connect_policy(
                region=region, account=account, cluster_resource_id=rid,
                partition=partition))),
            opts=child,
        )
        code_arn = code_object_arn(code_uri, partition)
        job_identity = pod_identity_role(
            f"{name}-migrate", namespace=namespace, service_account=MIGRATE_SERVICE_ACCOUNT,
            policy_json=pulumi.Output.all(secret_arn, key.arn, code_key_arn).apply(
                lambda a: json.dumps(migration_policy_document(
                    secret_arn=a[0], secret_key_arn=a[1], code_object_arn=code_arn,
                    code_key_arn=a[2], region=region))),
            cluster_name=ctx.cluster_name, tags=tags, opts=child,
        )
        app_dsn = db.endpoint.apply(lambda host: dsn(host, cfg))
        master_dsn = db.endpoint.apply(lambda host: dsn(host, cfg, cfg.master_username))

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider,
                                          depends_on=[cluster, *after])
        job_sa = k8s.core.v1.ServiceAccount(
            f"{name}-migrate-sa",
            metadata={"name": MIGRATE_SERVICE_ACCOUNT, "namespace": namespace,
                      "labels": dict(JOB_LABELS)},
            automount_service_account_token=False,  # the Job never calls the Kubernetes API
            opts=k8s_opts,
        )
        self.policies = []
        for obj in (ray_db_policy(namespace, db_cidrs), migration_policy(namespace, db_cidrs)):
            self.policies.append(k8s.networking.v1.NetworkPolicy(
                f"{name}-{obj['metadata']['name']}", metadata=obj["metadata"],
                spec=obj["spec"], opts=k8s_opts,
            ))
        spec = migration_job(
            rag=rag, namespace=namespace, code_uri=code_uri, code_version=code_version,
            region=region, dsn_value=master_dsn, secret_arn=secret_arn,
        )
        # The database (writer up), the Job's identity (role, grant, association, account) and
        # the egress policy exist before the pod.
        self.job = k8s.batch.v1.Job(
            f"{name}-migrate", metadata=spec["metadata"], spec=spec["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider,
                depends_on=[cluster, *after, db, *instances, job_identity.role,
                            *job_identity.policies,
                            *([job_identity.association] if job_identity.association else []),
                            job_sa,
                            *self.policies]),
        )
        self.endpoint = db.endpoint
        self.secret_arn = secret_arn
        self.job_name = spec["metadata"]["name"]
        self.grants = [connect]
        self._env = pod_env(app_dsn, region)
        register_declared_outputs(self)

    def pod_extras(self) -> RayPodExtras:
        """The app role's DSN (no password) and the IAM token region in every Ray pod's env.
        (The RAG code's packages reach the gateway through its runtime_env:
        serve_app/serve_config.py.)"""
        return RayPodExtras(env=list(self._env))


def _secret_arn(secrets: Any) -> str:
    """The ARN of the secret RDS made (`master_user_secrets[0].secret_arn`)."""
    first = secrets[0] if secrets else None
    if first is None:
        raise ValueError("Aurora reported no master user secret (manage_master_user_password)")
    return str(first["secret_arn"] if isinstance(first, dict) else first.secret_arn)
