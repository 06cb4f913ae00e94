"""The vector database on AWS: Aurora PostgreSQL Serverless v2 with pgvector (issue 18).

Made when `serving.rag.enabled`; sized by the stack config's `rag.aurora` (infra/config/rag.py).

- In the private subnets (a DB subnet group over them), never publicly accessible.
- A security group of its own that admits only PostgreSQL (5432) from the cluster security group
  (the nodes' and therefore the pods' group, as for the GCS Redis), and nothing else.
- Storage, Performance Insights and the master-password secret encrypted with a customer managed
  KMS key that rotates yearly; TLS required (`rds.force_ssl`).
- Continuous backups (`rag.aurora.backupRetentionDays`), a final snapshot on delete; in prod a
  reader instance (Multi-AZ failover) and deletion protection (the config refuses prod without).
- Credentials: Aurora's own Secrets Manager secret (`manage_master_user_password`). RDS
  generates and rotates the password; it never passes through Pulumi state, a stack file or the
  machine running `pulumi up`. The Ray pods' Pod Identity role may read that one secret (and
  decrypt it through Secrets Manager only); they get the DSN without the password and the
  secret's ARN as env (serve_app/rag/aws_secret.py reads it at each new connection). Why not
  IAM database auth: its 15-minute tokens need the same code, the master user would still need a
  password to create the IAM user, and AWS advises it only below a few hundred new connections
  per second; see docs/rag.md.
- The schema (extension, tables, HNSW indexes: serve_app/rag/schema.py, the serve side's one
  schema) is created by a Kubernetes Job in the serving namespace, not from the machine running
  `pulumi up` (the database is private). It runs the pinned ray-llm image, reads the serve_app
  bundle from the model store with the Ray pods' identity, and waits for the writer instance,
  the namespace and its NetworkPolicy. A new code bundle is a new Job (its name carries the code
  version), so a schema change ships with the code that needs it.
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
from infra.context import StackContext
from infra.foundation.network import subnet_plan
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
sys.exit(schema.main(["--dsn-env", "MIGRATION_DSN", *(["--dimensions", *dims] if dims else [])]))
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


def dsn(endpoint: str, cfg: AuroraConfig) -> str:
    """The libpq DSN the pods get, without the password (it comes from the secret). TLS is
    required; the server's certificate is not verified (the RDS CA bundle is not in the image)."""
    return (f"host={endpoint} port={PORT} dbname={cfg.database_name} "
            f"user={cfg.master_username} sslmode=require connect_timeout=10")


def pod_env(dsn_value: pulumi.Input[str], secret_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    return [{"name": DSN_ENV_VAR, "value": dsn_value},
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


def job_name(code_version: str, rag: StackRagConfig) -> str:
    """`rag-migrate-<hash>`: a new code bundle, engine or index set is a new Job."""
    digest = hashlib.sha256(json.dumps(
        [code_version, rag.aurora.engine_version, rag.migration.dimensions]).encode()).hexdigest()
    return f"rag-migrate-{digest[:12]}"


def migration_job(
    *, rag: StackRagConfig, namespace: str, service_account: str, code_uri: str,
    code_version: str, region: str, dsn_value: pulumi.Input[str],
    secret_arn: pulumi.Input[str],
) -> dict[str, Any]:
    """The migration Job (a plain dict, as `kubernetes.batch.v1.Job` takes it)."""
    deadline = rag.migration.timeout_minutes * 60
    env: list[dict[str, Any]] = [
        *pod_env(dsn_value, secret_arn),
        {"name": "DSN_ENV_VAR", "value": DSN_ENV_VAR},
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
    # The Ray pods' identity: it reads the code bundle and the database secret.
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
    `secret_arn`, `job_name`, `job` and `policies` (pass both to the RayService's `after`)."""

    endpoint: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    job_name: str
    job: k8s.batch.v1.Job
    policies: list[k8s.networking.v1.NetworkPolicy]

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
        service_account: str,
        code_uri: str,
        code_version: str,
        ctx: StackContext,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`subnet_ids`/`db_cidrs`: the private subnets (ids and their CIDRs); `pods_role_name`,
        `service_account`: the Ray pods' Pod Identity role and ServiceAccount (the model
        store's); `after`: what the Job waits for besides the database (the namespace, the
        model store with its code bundle, the NodePool its pod lands on)."""
        super().__init__("llm-platform:aws:VectorDatabase", name, None, opts)
        cfg, tags = rag.aurora, ctx.tags
        region = aws.get_region().region
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
            iam_database_authentication_enabled=False,
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
        read_secret = aws.iam.RolePolicy(
            f"{name}-secret-read", role=pods_role_name,
            policy=pulumi.Output.all(secret_arn, key.arn).apply(lambda a: json.dumps(
                secret_read_policy(secret_arn=a[0], key_arn=a[1], region=region))),
            opts=child,
        )
        dsn_value = db.endpoint.apply(lambda host: dsn(host, cfg))

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider,
                                          depends_on=[cluster, *after])
        self.policies = []
        for obj in (ray_db_policy(namespace, db_cidrs), migration_policy(namespace, db_cidrs)):
            self.policies.append(k8s.networking.v1.NetworkPolicy(
                f"{name}-{obj['metadata']['name']}", metadata=obj["metadata"],
                spec=obj["spec"], opts=k8s_opts,
            ))
        spec = migration_job(
            rag=rag, namespace=namespace, service_account=service_account, code_uri=code_uri,
            code_version=code_version, region=region, dsn_value=dsn_value,
            secret_arn=secret_arn,
        )
        # The database (writer up), the secret grant and the egress policy exist before the pod.
        self.job = k8s.batch.v1.Job(
            f"{name}-migrate", metadata=spec["metadata"], spec=spec["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider,
                depends_on=[cluster, *after, db, *instances, read_secret, *self.policies]),
        )
        self.endpoint = db.endpoint
        self.secret_arn = secret_arn
        self.job_name = spec["metadata"]["name"]
        self._env = pod_env(dsn_value, secret_arn)
        register_declared_outputs(self)

    def pod_extras(self) -> RayPodExtras:
        """The DSN (no password) and the secret's ARN in every Ray pod's env. (The RAG code's
        packages reach the gateway through its runtime_env: serve_app/serve_config.py.)"""
        return RayPodExtras(env=list(self._env))


def _secret_arn(secrets: Any) -> str:
    """The ARN of the secret RDS made (`master_user_secrets[0].secret_arn`)."""
    first = secrets[0] if secrets else None
    if first is None:
        raise ValueError("Aurora reported no master user secret (manage_master_user_password)")
    return str(first["secret_arn"] if isinstance(first, dict) else first.secret_arn)
